#!/usr/bin/env python3
"""A 1 KiB checkpoint delta on a 10 MiB checkpoint against a full 10 MiB
checkpoint PATCH, both measured in the same run (bench/pulumi.sh).
Bodies are gzip-compressed before the clock starts (that is the CLI's
work); each PATCH is timed from request to response.  Prints the medians
and their ratio; exits 1 when the delta costs more than 0.1 of the full."""
import gzip
import importlib.util
import statistics
import sys
import time

spec = importlib.util.spec_from_file_location('pc', sys.argv[2] + '/tests/helpers/pulumi-cli.py')
pc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pc)
c = pc.CLI(sys.argv[1], sys.argv[3], 'acme')
s = pc.stack_path('acme', 'proj', 'bench')
c.call('POST', '/api/stacks/acme/proj', {'stackName': 'bench'})
u, tok, _ = pc.start_update(c, s)
ut = 'update-token ' + tok
N = int(sys.argv[4]) if len(sys.argv) > 4 else 5

head = ('{"version":3,"deployment":{"manifest":{"time":"2026-01-01T00:00:00Z","magic":"","version":"v3.260.0"},'
        '"metadata":{},"resources":[')
res, i, size = [], 0, 0
while size < 10 * 1024 * 1024:
    r = '{"urn":"urn:pulumi:bench::proj::x:y:Z::r%d","custom":true,"type":"x:y:Z","outputs":{"v":"%s","n":%d}}' % (
        i, 'a' * 400, i)
    res.append(r)
    size += len(r) + 1
    i += 1
text = head + ','.join(res) + ']}}'
seq = 1


def patch(kind, body):
    t0 = time.perf_counter()
    st, _, out = c.call('PATCH', '%s/update/%s/%s' % (s, u, kind), raw=body, auth=ut,
                        headers={'Content-Encoding': 'gzip'})
    if st != 200:
        sys.exit('bench: %s -> %d %r' % (kind, st, out[:200]))
    return time.perf_counter() - t0


full, delta = [], []
for k in range(N):
    full.append(patch('checkpointverbatim', gzip.compress(('{"version":3,"untypedDeployment":%s,"sequenceNumber":%d}'
                                                          % (text, seq)).encode(), 6)))
    seq += 1
    off = text.index('"v":"', len(text) // 2) + 5
    new = text[:off] + chr(ord('b') + k % 20) * 1024 + text[off + 1024:]
    body = gzip.compress(pc.Payloads.delta([pc.edit(off, off + 1024, new[off:off + 1024])], new, seq), 6)
    delta.append(patch('checkpointdelta', body))
    seq += 1
    text = new
mf, md = statistics.median(full), statistics.median(delta)
print('pulumi checkpoints (%d MiB text): full PATCH median %.3f s, 1 KiB delta median %.3f s, ratio %.3f (want <= 0.1)'
      % (len(text) >> 20, mf, md, md / mf))
sys.exit(0 if md / mf <= 0.1 else 1)
