#!/usr/bin/env python3
"""pulumi-cli.py - a stand-in for the `pulumi` CLI on the wire.

The real CLI cannot be installed here (its npm package downloads the
binary at run time), so this replays, request by request, what an
unmodified CLI 3.260 sends to an HTTP state backend, following
../shared/reference/pulumi.md (section 7 call sequences, section 9
conformance plan, section 9.3 checkpoint/delta payloads): the same
headers, gzip bodies on the calls the CLI compresses, update tokens on
update-scoped calls, verbatim + delta checkpoints with SHA-256.  Every
response is checked the way the CLI reads it (section 0): error bodies carry
"code" = status, decoded bodies are JSON, integers are integers,
Content-Encoding is gzip or absent.

Output: one line per check, "PASS <what>" or "FAIL <what>: <why>", for
tests/integration/t0023-pulumi.sh to turn into TAP.

Usage: pulumi-cli.py SCENARIO --base URL --token TOKEN [--org acme]
Scenarios: walkthrough, bad-input, concurrency, lease, user, deltas-a, deltas-b
(the wire side: pulumi_wire.py)
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pulumi_wire import (CLI, Fail, Payloads, START, edit, events, export_text, gzip,  # noqa: E402,F401
                         program, sha, stack_path, start_update, summary)


def walk_login(c):
    c.expect('GET /api/user: githubLogin and organizations', 200, 'GET', '/api/user',
             check=lambda d: d['githubLogin'] and all(o['githubLogin'] for o in d['organizations']))
    c.expect('GET /api/user without a token: 401', 401, 'GET', '/api/user', auth=None)
    c.expect('GET /api/user with a wrong token: 401', 401, 'GET', '/api/user', auth='token wrong-token-wrong')
    caps = c.expect('GET /api/capabilities: delta v2 with its cutoff, batch-encrypt, nothing else', 200, 'GET',
                    '/api/capabilities',
                    check=lambda d: sorted(x['capability'] for x in d['capabilities']) ==
                    ['batch-encrypt', 'delta-checkpoint-uploads-v2'] and
                    all(x['version'] == 2 and isinstance(x['configuration']['checkpointCutoffSizeBytes'], int)
                        for x in d['capabilities'] if x['capability'].startswith('delta')))
    c.expect('GET /api/user/organizations/default', 200, 'GET', '/api/user/organizations/default',
             check=lambda d: d['GitHubLogin'] == c.org)
    c.expect('a stack that does not exist: 404 with code', 404, 'GET', stack_path(c.org, 'nope-proj', 'nope'))
    return caps


def walk_init(c, s):
    c.expect('stack init: GET stack -> 404', 404, 'GET', s)
    c.expect('stack init: POST create -> {}', 200, 'POST', '/api/stacks/%s/proj' % c.org,
             {'stackName': 'dev', 'tags': {'pulumi:project': 'proj', 'pulumi:runtime': 'nodejs'}},
             check=lambda d: isinstance(d.get('messages', []), list))
    c.expect('stack init again: 409 already exists', 409, 'POST', '/api/stacks/%s/proj' % c.org,
             {'stackName': 'dev'}, check=lambda d: 'already exists' in d['message'])
    d = c.expect('GET stack: names, tags, activeUpdate, version, no config', 200, 'GET', s,
                 check=lambda d: d['orgName'] == c.org and d['projectName'] == 'proj' and d['stackName'] == 'dev'
                 and d['tags']['pulumi:project'] == 'proj' and isinstance(d['activeUpdate'], str)
                 and isinstance(d['version'], int) and d.get('config') is None)
    c.expect('stack ls lists it', 200, 'GET', '/api/user/stacks?project=proj',
             check=lambda d: any(x['stackName'] == 'dev' and x['projectName'] == 'proj' for x in d['stacks'])
             and not d.get('continuationToken'))
    c.expect('export of a new stack: version 3, a manifest, no resources', 200, 'GET', s + '/export',
             check=lambda d: 1 <= d['version'] <= 4 and isinstance(d['deployment']['manifest']['time'], str)
             and not d['deployment'].get('resources'))
    c.expect('HEAD project: 200 once it has a stack', 200, 'HEAD', '/api/stacks/%s/proj' % c.org)
    c.expect('HEAD of an unknown project: 404', 404, 'HEAD', '/api/stacks/%s/nothing-here' % c.org)
    return d['version'] if d else 0


def walk_secrets(c, s):
    import base64
    import os
    c.expect('encrypt the log session key (32 random bytes)', 200, 'POST', s + '/encrypt',
             {'plaintext': base64.b64encode(os.urandom(32)).decode()},
             check=lambda d: base64.b64decode(d['ciphertext'], validate=True))
    d = c.expect('config set --secret: encrypt', 200, 'POST', s + '/encrypt', {'plaintext': 'czNjcjN0'},
                 check=lambda d: base64.b64decode(d['ciphertext'], validate=True))
    ct = d['ciphertext'] if d else 'AAAA'
    c.expect('decrypt gives the plaintext back', 200, 'POST', s + '/decrypt', {'ciphertext': ct},
             check=lambda d: d['plaintext'] == 'czNjcjN0')
    d = c.expect('encrypt a second value', 200, 'POST', s + '/encrypt', {'plaintext': 'Ingi'})
    ct2 = d['ciphertext'] if d else 'AAAA'
    c.expect('encrypting again gives a new ciphertext', 200, 'POST', s + '/encrypt', {'plaintext': 'czNjcjN0'},
             check=lambda d: d['ciphertext'] != ct)
    c.expect('batch-decrypt (gzip): keyed by exactly the ciphertexts sent', 200, 'POST', s + '/batch-decrypt',
             {'ciphertexts': [ct, ct2]}, gz=True,
             check=lambda d: d['plaintexts'] == {ct: 'czNjcjN0', ct2: 'Ingi'})
    d = c.expect('batch-encrypt (gzip): in order', 200, 'POST', s + '/batch-encrypt',
                 {'plaintexts': ['ImEi', 'ImIi']}, gz=True, check=lambda d: len(d['ciphertexts']) == 2)
    if d:
        cts = d['ciphertexts']
        c.expect('batch-decrypt of the batch', 200, 'POST', s + '/batch-decrypt', {'ciphertexts': cts}, gz=True,
                 check=lambda d: [d['plaintexts'][x] for x in cts] == ['ImEi', 'ImIi'])
    c.expect('create a second stack', 200, 'POST', '/api/stacks/%s/proj' % c.org, {'stackName': 'other'})
    c.expect('encrypt on the second stack', 200, 'POST', stack_path(c.org, 'proj', 'other') + '/encrypt',
             {'plaintext': 'eA=='})
    c.expect("the second stack cannot decrypt the first one's ciphertext", 400, 'POST',
             stack_path(c.org, 'proj', 'other') + '/decrypt', {'ciphertext': ct})
    c.expect('a tampered ciphertext: 400', 400, 'POST', s + '/decrypt', {'ciphertext': ct[:-4] + 'AAA='})
    c.expect('log-batch-decryption (--show-secrets) is accepted', 200, 'POST', s + '/decrypt/log-batch-decryption',
             {'commandName': 'pulumi stack export'})
    return ct, ct2


def walk_preview(c, s, v0, ct, ct2):
    p, tp, ver = start_update(c, s, 'update', True, ct, 'preview: ')
    if not tp:
        return
    c.say(ver == v0, 'preview: start answers the current version', 'version %r, want %r' % (ver, v0))
    c.expect('preview: export', 200, 'GET', s + '/export')
    c.expect('preview: GET stack', 200, 'GET', s)
    c.expect('preview: batch-decrypt the secret config', 200, 'POST', s + '/batch-decrypt',
             {'ciphertexts': [ct, ct2]}, gz=True)
    ev = {'events': [{'sequence': 0, 'timestamp': 1767225600,
                      'preludeEvent': {'config': {'proj:dbPassword': '[secret]'}}},
                     {'sequence': 1, 'timestamp': 1767225601, 'summaryEvent': summary({'create': 1}, True)}]}
    ut = 'update-token ' + tp
    c.expect('preview: events/batch (gzip, update token)', 200, 'POST', '%s/update/%s/events/batch' % (s, p), ev,
             ut, True)
    c.expect('preview: the same batch again (idempotent)', 200, 'POST', '%s/update/%s/events/batch' % (s, p), ev,
             ut, True)
    c.expect('preview: events/batch with the user token: 401', 401, 'POST', '%s/update/%s/events/batch' % (s, p),
             ev, 'token', True)
    c.expect('preview: a preview saves no checkpoint', 400, 'PATCH', '%s/update/%s/checkpointverbatim' % (s, p),
             raw=Payloads.verbatim('{"version":3,"deployment":{}}', 1), auth=ut, gz=True)
    c.expect('preview: complete', 200, 'POST', '%s/update/%s/complete' % (s, p), {'status': 'succeeded'}, ut)
    c.expect('preview: the stack version did not move', 200, 'GET', s, check=lambda d: d['version'] == v0)
    c.expect('preview: not in the history', 200, 'GET', s + '/updates',
             check=lambda d: all(x['kind'] != 'preview' and x['version'] != v0 for x in d['updates']))


def walk_checkpoints(c, s, u, ut, pl):
    base = '%s/update/%s' % (s, u)
    c.expect('checkpoint with the user token: 401', 401, 'PATCH', base + '/checkpointverbatim',
             raw=pl.verbatim(pl.t1, 1), gz=True)
    c.expect('checkpoint with a bogus update token: 401', 401, 'PATCH', base + '/checkpointverbatim',
             raw=pl.verbatim(pl.t1, 1), auth='update-token bogus', gz=True)
    c.expect('delta before any verbatim: 409', 409, 'PATCH', base + '/checkpointdelta',
             raw=pl.delta(pl.d2, pl.t2, 1), auth=ut, gz=True)
    c.expect('a: verbatim seq 1 (T1)', 200, 'PATCH', base + '/checkpointverbatim', raw=pl.verbatim(pl.t1, 1),
             auth=ut, gz=True)
    c.say(export_text(c, s) == pl.t1.encode(), 'a: export is T1 byte for byte (\\u003c kept)',
          'export differs from T1')
    c.expect('b: delta seq 2 (insertion, T1 -> T2)', 200, 'PATCH', base + '/checkpointdelta',
             raw=pl.delta(pl.d2, pl.t2, 2), auth=ut, gz=True)
    c.expect('c: the same delta again is a no-op', 200, 'PATCH', base + '/checkpointdelta',
             raw=pl.delta(pl.d2, pl.t2, 2), auth=ut, gz=True)
    c.say(export_text(c, s) == pl.t2.encode(), 'c: the retried delta was not applied twice', 'export is not T2')
    c.expect('d: delta seq 3 with a wrong hash: 409', 409, 'PATCH', base + '/checkpointdelta',
             raw=pl.delta(pl.d3, pl.t3, 3, '0' * 64), auth=ut, gz=True)
    c.say(export_text(c, s) == pl.t2.encode(), 'd: the refused delta changed nothing', 'export is not T2')
    c.expect('e: delta seq 3 (two edits, one at offset 0, T2 -> T3)', 200, 'PATCH', base + '/checkpointdelta',
             raw=pl.delta(pl.d3, pl.t3, 3), auth=ut, gz=True)
    c.expect('f: delta seq 4 with a wrong hash: 409', 409, 'PATCH', base + '/checkpointdelta',
             raw=pl.delta(pl.d3, pl.t4, 4, '0' * 64), auth=ut, gz=True)
    c.expect('f: verbatim fallback with the same seq 4 (T4)', 200, 'PATCH', base + '/checkpointverbatim',
             raw=pl.verbatim(pl.t4, 4), auth=ut, gz=True)
    c.say(export_text(c, s) == pl.t4.encode(), 'f: export is T4 byte for byte', 'export is not T4')
    c.expect('an older verbatim (seq 2) after seq 4 is ignored', 200, 'PATCH', base + '/checkpointverbatim',
             raw=pl.verbatim(pl.t2, 2), auth=ut, gz=True)
    c.say(export_text(c, s) == pl.t4.encode(), 'the stale retry did not roll the state back', 'export is not T4')


def walk_update(c, s, v0, ct, pl):
    u, tu, ver = start_update(c, s, 'update', False, ct, 'up: ')
    if not tu:
        return None
    c.say(ver == v0 + 1, 'up: start answers version+1', 'version %r' % ver)
    d = c.expect('up: a second update is created', 200, 'POST', s + '/update', program('proj', False))
    if d:
        c.expect('up: starting it while the first runs: 409 with code', 409, 'POST',
                 '%s/update/%s' % (s, d['updateID']), START)
    c.expect('up: GET stack names the active update', 200, 'GET', s, check=lambda d: d['activeUpdate'] == u)
    c.expect('up: a plain dry run may run beside it', 200, 'POST', s + '/preview', program('proj', True))
    ut = 'update-token ' + tu
    walk_checkpoints(c, s, u, ut, pl)
    d = c.expect('up: renew_lease answers a token and its expiry', 200, 'POST', '%s/update/%s/renew_lease' % (s, u),
                 {'token': '', 'duration': 300}, ut,
                 check=lambda d: d['token'] and isinstance(d['tokenExpiration'], int))
    ut2 = 'update-token ' + d['token'] if d else ut
    c.expect('up: events 5..9 before 0..4 (out of order)', 200, 'POST', '%s/update/%s/events/batch' % (s, u),
             events(5, 4, summary({'create': 2}, False)), ut2, True)
    c.expect('up: events 0..4', 200, 'POST', '%s/update/%s/events/batch' % (s, u), events(0, 5), ut2, True)
    c.expect('up: complete', 200, 'POST', '%s/update/%s/complete' % (s, u), {'status': 'succeeded'}, ut2)
    c.expect('up: complete again (a retry) is 200', 200, 'POST', '%s/update/%s/complete' % (s, u),
             {'status': 'succeeded'}, ut2)
    c.expect('up: a checkpoint after complete: 4xx', 403, 'PATCH', '%s/update/%s/checkpointverbatim' % (s, u),
             raw=pl.verbatim(pl.t1, 9), auth=ut2, gz=True)
    c.expect('up: renew_lease after complete: 403', 403, 'POST', '%s/update/%s/renew_lease' % (s, u),
             {'token': '', 'duration': 300}, ut2)
    c.expect('up: the stack is at version+1, no active update', 200, 'GET', s,
             check=lambda d: d['version'] == v0 + 1 and d['activeUpdate'] == '')
    return u


def walk_cancel(c, s, pl):
    """`pulumi cancel` while an update saves checkpoints."""
    u, tu, ver = start_update(c, s, 'update', False, None, 'cancel: ')
    if not tu:
        return
    ut = 'update-token ' + tu
    c.expect('cancel: a checkpoint while running', 200, 'PATCH', '%s/update/%s/checkpointverbatim' % (s, u),
             raw=pl.verbatim(pl.t4, 1), auth=ut, gz=True)
    c.expect('cancel: POST cancel with the user token', 200, 'POST', '%s/update/%s/cancel' % (s, u))
    c.expect('cancel: again is 200', 200, 'POST', '%s/update/%s/cancel' % (s, u))
    c.expect("cancel: the cancelled update's token is refused", 403, 'PATCH',
             '%s/update/%s/checkpointverbatim' % (s, u), raw=pl.verbatim(pl.t1, 2), auth=ut, gz=True)
    c.expect('cancel: the status poll says failed', 200, 'GET', '%s/update/%s' % (s, u),
             check=lambda d: d['status'] == 'failed' and d['events'] == [])
    c.expect('cancel: the stack is free again', 200, 'GET', s, check=lambda d: d['activeUpdate'] == '')
    return ver


def walk_export_import(c, s, pl, vup):
    d = c.expect('export: T4, version 3, the service secrets provider', 200, 'GET', s + '/export',
                 check=lambda d: d == json.loads(pl.t4) and d['deployment']['secrets_providers']['type'] == 'service')
    c.expect('export/{version} of the update', 200, 'GET', '%s/export/%d' % (s, vup),
             check=lambda d: d == json.loads(pl.t4))
    c.expect('export/9999: 404', 404, 'GET', s + '/export/9999')
    imp = json.loads(pl.t4)
    imp['deployment']['resources'][0]['outputs']['imported'] = True
    d = c.expect('import (gzip): an update id', 200, 'POST', s + '/import', imp, gz=True,
                 check=lambda d: d['updateId'])
    if d:
        c.expect('import: the first poll says succeeded, no continuationToken', 200, 'GET',
                 '%s/update/%s' % (s, d['updateId']),
                 check=lambda d: d['status'] == 'succeeded' and isinstance(d['events'], list)
                 and not d.get('continuationToken'))
    c.expect('import: export is the imported state', 200, 'GET', s + '/export', check=lambda d: d == imp)
    c.expect('import: an invalid deployment is refused', 400, 'POST', s + '/import', {'version': 9}, gz=True)
    d = c.expect('import: GET stack', 200, 'GET', s)
    return d['version'] if d else 0


def walk_history(c, s, ct, vup):
    def check(d):
        ups = d['updates']
        u = [x for x in ups if x['version'] == vup][0]
        return (ups[0]['kind'] == 'import' and u['kind'] == 'update' and u['result'] == 'succeeded'
                and u['startTime'] > 0 and u['endTime'] >= u['startTime']
                and u['config']['proj:dbPassword'] == {'string': ct, 'secret': True, 'object': False}
                and u['resourceChanges']['create'] == 2 and u['message'] == 'replayed'
                and all(':' in k for x in ups for k in x['config'])
                and [x['version'] for x in ups] == sorted((x['version'] for x in ups), reverse=True))
    d = c.expect('history: newest first, the import, the update with config and resource changes', 200, 'GET',
                 s + '/updates?pageSize=10&page=1', check=check)
    if d:
        second = d['updates'][1]
        c.expect('history: pageSize=1&page=2 is the second entry', 200, 'GET', s + '/updates?pageSize=1&page=2',
                 check=lambda x: x['updates'] == [second])
        c.expect('updates/latest is the import', 200, 'GET', s + '/updates/latest',
                 check=lambda x: x['info'] == d['updates'][0])
    c.expect('history: a bad pageSize is 400', 400, 'GET', s + '/updates?pageSize=0')


def walk_destroy(c, s, pl, v):
    c.expect('stack rm with resources: 400 with the exact message', 400, 'DELETE', s + '?force=false',
             check=lambda d: d['message'] == 'Bad Request: Stack still contains resources.')
    p, tp, _ = start_update(c, s, 'destroy', True, None, 'destroy preview: ')
    if tp:
        c.expect('destroy preview: complete', 200, 'POST', '%s/update/%s/complete' % (s, p), {'status': 'succeeded'},
                 'update-token ' + tp)
    u, tu, ver = start_update(c, s, 'destroy', False, None, 'destroy: ')
    if not tu:
        return
    c.say(ver == v + 1, 'destroy: version+1', 'version %r want %r' % (ver, v + 1))
    ut = 'update-token ' + tu
    c.expect('destroy: the last checkpoint has no resources', 200, 'PATCH', '%s/update/%s/checkpoint' % (s, u),
             {'isInvalid': False, 'version': 3, 'deployment': json.loads(pl.empty)['deployment']}, ut, True)
    c.expect('destroy: events', 200, 'POST', '%s/update/%s/events/batch' % (s, u),
             events(0, 1, summary({'delete': 2}, False)), ut, True)
    c.expect('destroy: complete', 200, 'POST', '%s/update/%s/complete' % (s, u), {'status': 'succeeded'}, ut)
    c.expect('destroy: export has no resources', 200, 'GET', s + '/export',
             check=lambda d: not d['deployment'].get('resources'))
    c.expect('destroy: history starts with the destroy', 200, 'GET', s + '/updates',
             check=lambda d: d['updates'][0]['kind'] == 'destroy')


def walk_rm(c, s):
    c.expect('stack tag set (PATCH tags)', 200, 'PATCH', s + '/tags', {'pulumi:project': 'proj', 'team': 'infra'})
    c.expect('stack ls -t team=infra', 200, 'GET', '/api/user/stacks?tagName=team&tagValue=infra',
             check=lambda d: [x['stackName'] for x in d['stacks']] == ['dev'])
    c.expect('stack rm of the empty stack', (200, 204), 'DELETE', s + '?force=false')
    c.expect('stack rm: GET is 404', 404, 'GET', s)
    c.expect('stack rm: not listed', 200, 'GET', '/api/user/stacks?project=proj',
             check=lambda d: all(x['stackName'] != 'dev' for x in d['stacks']))
    c.expect('stack rm again: 404', 404, 'DELETE', s + '?force=false')
    c.expect('stack rm: export is 404', 404, 'GET', s + '/export')
    s2 = stack_path(c.org, 'proj', 'dev2')
    c.expect('--force: create dev2', 200, 'POST', '/api/stacks/%s/proj' % c.org, {'stackName': 'dev2'})
    pl = Payloads('http://x', c.org, 'proj', 'dev2')
    c.expect('--force: import state with resources', 200, 'POST', s2 + '/import', json.loads(pl.t2), gz=True)
    c.expect('--force: rename dev2 to dev3', 200, 'POST', s2 + '/rename', {'newName': 'dev3', 'newProject': ''})
    s3 = stack_path(c.org, 'proj', 'dev3')
    c.expect('rename: the URNs follow the new name', 200, 'GET', s3 + '/export',
             check=lambda d: all(r['urn'].startswith('urn:pulumi:dev3::proj::')
                                 for r in d['deployment']['resources']))
    c.expect('rename: the old name is gone', 404, 'GET', s2)
    c.expect('--force: stack rm --force removes it with its resources', (200, 204), 'DELETE', s3 + '?force=true')


def walkthrough(c):
    s = stack_path(c.org, 'proj', 'dev')
    walk_login(c)
    v0 = walk_init(c, s)
    ct, ct2 = walk_secrets(c, s)
    walk_preview(c, s, v0, ct, ct2)
    pl = Payloads(c.base, c.org, 'proj', 'dev')
    u = walk_update(c, s, v0, ct, pl)
    if u is None:
        return
    walk_cancel(c, s, pl)
    v = walk_export_import(c, s, pl, v0 + 1)
    walk_history(c, s, ct, v0 + 1)
    walk_destroy(c, s, pl, v)
    walk_rm(c, s)


def bad_input(c, max_inflated):
    """Malformed and hostile requests: 4xx with code, nothing changed."""
    s = stack_path(c.org, 'proj', 'bad')
    c.expect('bad: create the stack', 200, 'POST', '/api/stacks/%s/proj' % c.org, {'stackName': 'bad'})
    pl = Payloads(c.base, c.org, 'proj', 'bad')
    u, tu, _ = start_update(c, s, 'update', False, None, 'bad: ')
    p, tp, _ = start_update(c, s, 'preview', True, None, 'bad: ')
    if not tu or not tp:
        return
    ut, base = 'update-token ' + tu, '%s/update/%s' % (s, u)
    c.expect('bad: verbatim seq 1', 200, 'PATCH', base + '/checkpointverbatim', raw=pl.verbatim(pl.t1, 1), auth=ut,
             gz=True)
    before = export_text(c, s)
    cp = base + '/checkpointdelta'
    cases = [
        ('malformed JSON', 400, 'PATCH', base + '/checkpointverbatim', b'{"version":3,"untypedDeployment":', True, ut),
        ('a JSON array body', 400, 'PATCH', base + '/checkpointverbatim', b'[1,2]', True, ut),
        ('duplicate keys', 400, 'PATCH', base + '/checkpointverbatim',
         b'{"version":3,"untypedDeployment":{"version":3,"deployment":{}},"sequenceNumber":2,"sequenceNumber":3}',
         True, ut),
        ('malformed gzip', 400, 'PATCH', base + '/checkpointverbatim', None, False, ut),
        ('a delta beyond the end of the text', 400, 'PATCH', cp,
         pl.delta([edit(len(pl.t1) + 1, len(pl.t1) + 2, 'x')], pl.t1, 2), True, ut),
        ('a delta with end before start', 400, 'PATCH', cp, pl.delta([edit(5, 4, 'x')], pl.t1, 2), True, ut),
        ('overlapping delta edits', 400, 'PATCH', cp,
         pl.delta([edit(0, 10, 'a'), edit(5, 12, 'b')], pl.t1, 2), True, ut),
        ('a negative offset', 400, 'PATCH', cp, pl.delta([edit(-1, 0, 'a')], pl.t1, 2), True, ut),
        ('a delta with a wrong hash', 409, 'PATCH', cp, pl.delta(pl.d2, pl.t2, 2, 'f' * 64), True, ut),
        ('a hash that is not hex', 400, 'PATCH', cp, pl.delta(pl.d2, pl.t2, 2, 'x' * 64), True, ut),
        ('sequenceNumber 0', 400, 'PATCH', base + '/checkpointverbatim', pl.verbatim(pl.t2, 0), True, ut),
        ('a verbatim whose deployment is not an object', 400, 'PATCH', base + '/checkpointverbatim',
         b'{"version":3,"untypedDeployment":{"version":3,"deployment":[]},"sequenceNumber":2}', True, ut),
        ('a plain checkpoint with version 7', 400, 'PATCH', base + '/checkpoint',
         b'{"isInvalid":false,"version":7,"deployment":{}}', True, ut),
        ('a wrong update token', 401, 'PATCH', cp, pl.delta(pl.d2, pl.t2, 2), True, 'update-token ' + 'ab' * 32),
        ("another update's token", 401, 'PATCH', cp, pl.delta(pl.d2, pl.t2, 2), True, 'update-token ' + tp),
        ('no token', 401, 'PATCH', cp, pl.delta(pl.d2, pl.t2, 2), True, None),
        ('the user token on an update route', 401, 'PATCH', cp, pl.delta(pl.d2, pl.t2, 2), True, 'token'),
        ('events that are not an array', 400, 'POST', base + '/events/batch', b'{"events":{}}', True, ut),
        ('an event without a sequence', 400, 'POST', base + '/events/batch', b'{"events":[{"timestamp":1}]}', True,
         ut),
        ('complete with an unknown status', 400, 'POST', base + '/complete', b'{"status":"done"}', False, ut),
        ('an update id of another stack', 404, 'PATCH', stack_path(c.org, 'proj', 'dev') + '/update/%s/checkpoint' % u,
         pl.verbatim(pl.t2, 2), True, ut),
    ]
    for what, want, m, path, raw, gz, auth in cases:
        if raw is None:
            c.expect('bad: %s -> %d' % (what, want), want, m, path, raw=b'\x1f\x8b\x08\x00garbage', auth=auth,
                     headers={'Content-Encoding': 'gzip'})
        else:
            c.expect('bad: %s -> %d' % (what, want), want, m, path, raw=raw, gz=gz, auth=auth)
    c.say(export_text(c, s) == before, 'bad: after all of that the state is unchanged', 'export changed')
    c.expect('bad: a valid delta still applies (seq 2)', 200, 'PATCH', cp, raw=pl.delta(pl.d2, pl.t2, 2), auth=ut,
             gz=True)
    # sizes: ITL_PULUMI_MAX_CHECKPOINT_BYTES is max_inflated here
    bomb = gzip.compress(b' ' * (max_inflated * 4))
    c.expect('bad: a gzip bomb (%d bytes inflating to %d): 413' % (len(bomb), max_inflated * 4), 413, 'PATCH',
             base + '/checkpointverbatim', raw=bomb, auth=ut, headers={'Content-Encoding': 'gzip'})
    big = pl.t2.replace('"n":1', '"n":1,"pad":"%s"' % ('x' * max_inflated))
    c.expect('bad: an oversized checkpoint (gzip, small on the wire): 413', 413, 'PATCH',
             base + '/checkpointverbatim', raw=pl.verbatim(big, 3), auth=ut, gz=True)
    early_413(c, 'bad: an oversized body (Content-Length over the cap): 413 with code, before it is read',
              base + '/checkpointverbatim', 2 * max_inflated, ut)
    grow = pl.delta([edit(0, 0, 'x' * (max_inflated // 2)), edit(1, 1, 'y' * (max_inflated // 2 + 10))], pl.t2, 3)
    c.expect('bad: a delta that grows the text past the cap: 413', 413, 'PATCH', cp, raw=grow, auth=ut, gz=True)
    c.expect('bad: Content-Encoding br: 415', 415, 'PATCH', cp, raw=pl.delta(pl.d2, pl.t2, 3), auth=ut,
             headers={'Content-Encoding': 'br'})
    c.expect('bad: a body that is not JSON (Content-Type text/plain): 415 with code', 415, 'POST',
             s + '/encrypt', raw=b'hello', headers={'Content-Type': 'text/plain'})
    c.expect('bad: encrypt with a plaintext that is not base64', 400, 'POST', s + '/encrypt', {'plaintext': '!!'})
    c.expect('bad: batch-decrypt with a ciphertext that is not base64', 400, 'POST', s + '/batch-decrypt',
             {'ciphertexts': ['%%%']}, gz=True)
    c.expect('bad: a stack name with a bad character', 400, 'POST', '/api/stacks/%s/proj' % c.org,
             {'stackName': 'a b'})
    c.expect('bad: a stack of another organization', 404, 'GET', stack_path('someone-else', 'proj', 'bad'))
    c.expect('bad: tags that are not strings', 400, 'PATCH', s + '/tags', {'a': 1})
    c.say(export_text(c, s) == pl.t2.encode(), 'bad: the state is T2, nothing else changed', 'export is not T2')
    c.expect('bad: complete', 200, 'POST', base + '/complete', {'status': 'failed'}, ut)
    c.expect('bad: a failed update keeps its last checkpoint', 200, 'GET', s + '/export',
             check=lambda d: d == json.loads(pl.t2))


def early_413(c, what, path, length, auth):
    """The server answers from the headers alone: send only them."""
    import socket
    k = socket.create_connection((c.host, c.port), timeout=30)
    k.sendall(('PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n'
               'Accept: application/vnd.pulumi+9\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n'
               % (path, c.host, auth, length)).encode())
    data = b''
    while True:
        chunk = k.recv(65536)
        if not chunk:
            break
        data += chunk
        if b'\r\n\r\n' in data:
            head, _, body = data.partition(b'\r\n\r\n')
            m = [ln for ln in head.split(b'\r\n') if ln.lower().startswith(b'content-length:')]
            if m and len(body) >= int(m[0].split(b':')[1]):
                break
    k.close()
    head, _, body = data.partition(b'\r\n\r\n')
    ok = head.startswith(b'HTTP/1.1 413') and json.loads(body).get('code') == 413
    c.say(ok, what, repr(data[:300]))


def concurrency(c):
    s = stack_path(c.org, 'proj', 'race')
    c.expect('race: create the stack', 200, 'POST', '/api/stacks/%s/proj' % c.org, {'stackName': 'race'})
    ids = []
    for i in range(4):
        d = c.expect('race: create update %d' % i, 200, 'POST', s + '/update', program('proj', False))
        ids.append(d['updateID'] if d else 'x')
    res = [None] * len(ids)

    def go(i):
        try:
            res[i] = c.call('POST', '%s/update/%s' % (s, ids[i]), START)
        except Exception as e:  # noqa: BLE001
            res[i] = (0, None, str(e).encode())
    ts = [threading.Thread(target=go, args=(i,)) for i in range(len(ids))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = sorted(r[0] for r in res)
    c.say(codes == [200, 409, 409, 409], 'race: four starts at once: one 200, three 409', 'statuses %r' % codes)
    c.say(all(r[1]['code'] == 409 for r in res if r[0] == 409), 'race: each 409 carries code 409', repr(res))
    win = [i for i in range(len(ids)) if res[i][0] == 200]
    if not win:
        return
    u, tok = ids[win[0]], res[win[0]][1]['token']
    pl = Payloads(c.base, c.org, 'proj', 'race')
    stop = []
    seen = []

    def saver():
        n = 1
        while not stop:
            try:
                st, doc, _ = c.call('PATCH', '%s/update/%s/checkpointverbatim' % (s, u),
                                    raw=pl.verbatim(pl.t1 if n % 2 else pl.t2, n), auth='update-token ' + tok,
                                    gz=True)
            except Exception as e:  # noqa: BLE001
                st = str(e)
            seen.append(st)
            n += 1
            if st != 200:
                break
    t = threading.Thread(target=saver)
    t.start()
    time.sleep(0.3)
    c.expect('race: cancel while checkpoints are being saved', 200, 'POST', '%s/update/%s/cancel' % (s, u))
    time.sleep(0.2)
    stop.append(1)
    t.join()
    c.say(seen and seen[-1] == 403 and all(x in (200, 403) for x in seen) and seen.count(403) == 1,
          'race: checkpoints succeed until the cancel, then 403 (no 5xx)', repr(seen[-5:]))
    c.say(export_text(c, s) in (pl.t1.encode(), pl.t2.encode()), 'race: the state is one whole checkpoint',
          'export is neither T1 nor T2')
    u2, t2, _ = start_update(c, s, 'update', False, None, 'race: after the cancel ')
    c.say(t2 is not None, 'race: a new update starts after the cancel', 'start failed')


def lease(c, seconds):
    s = stack_path(c.org, 'proj', 'lease')
    c.expect('lease: create the stack', 200, 'POST', '/api/stacks/%s/proj' % c.org, {'stackName': 'lease'})
    u, tu, _ = start_update(c, s, 'update', False, None, 'lease: ')
    if not tu:
        return
    ut = 'update-token ' + tu
    d = c.expect('lease: renew_lease keeps the token', 200, 'POST', '%s/update/%s/renew_lease' % (s, u),
                 {'token': '', 'duration': 1}, ut, check=lambda d: d['token'] == tu)
    exp = d['tokenExpiration'] if d else 0
    time.sleep(max(0, exp - time.time()) + 1.5)
    c.expect('lease: a checkpoint after the lease expired: 403', 403, 'PATCH',
             '%s/update/%s/checkpoint' % (s, u), {'isInvalid': False, 'version': 3, 'deployment': {}}, ut, True)
    c.expect('lease: renew_lease after expiry: 403 (the CLI stops renewing)', 403, 'POST',
             '%s/update/%s/renew_lease' % (s, u), {'token': '', 'duration': 300}, ut)
    u2, t2, _ = start_update(c, s, 'update', False, None, 'lease: a new update takes over; ')
    c.expect('lease: the expired update is failed in the history', 200, 'GET', s + '/updates',
             check=lambda d: [x['result'] for x in d['updates']] == ['in-progress', 'failed'])


def deltas(c, state_file, phase):
    """Many deltas in one update (the stored text is rewritten every 64),
    and, across an attestd restart, deltas applied to the text rebuilt
    from the database (nothing cached)."""
    s = stack_path(c.org, 'proj', 'deltas')
    if phase == 'a':
        c.expect('deltas: create the stack', 200, 'POST', '/api/stacks/%s/proj' % c.org, {'stackName': 'deltas'})
        u, tok, _ = start_update(c, s, 'update', False, None, 'deltas: ')
        pl = Payloads(c.base, c.org, 'proj', 'deltas')
        text, seq = pl.t2, 1
        c.expect('deltas: verbatim seq 1', 200, 'PATCH', '%s/update/%s/checkpointverbatim' % (s, u),
                 raw=pl.verbatim(text, 1), auth='update-token ' + tok, gz=True)
        bad = 0
        for seq in range(2, 72):
            off = text.index('"n":') + 4
            end = text.index('}', off)
            new = text[:off] + str(seq) + text[end:]
            st, _, _ = c.call('PATCH', '%s/update/%s/checkpointdelta' % (s, u),
                              raw=pl.delta([edit(off, end, str(seq))], new, seq), auth='update-token ' + tok, gz=True)
            bad += st != 200
            text = new
        c.say(bad == 0, 'deltas: 70 deltas in a row (past the rewrite every 64)', '%d refused' % bad)
        c.say(export_text(c, s) == text.encode(), 'deltas: export is the text of the last delta', 'export differs')
        json.dump({'u': u, 'tok': tok, 'seq': seq, 'text': text}, open(state_file, 'w'))
        return
    st = json.load(open(state_file))
    u, tok, seq, text = st['u'], st['tok'], st['seq'], st['text']
    ut = 'update-token ' + tok
    pl = Payloads(c.base, c.org, 'proj', 'deltas')
    for k in range(3):
        seq += 1
        off = text.index('"html":"') + 8
        new = text[:off] + 'R%d' % k + text[off + 2:]
        c.expect('deltas after a restart: seq %d applies to the text rebuilt from the database' % seq, 200, 'PATCH',
                 '%s/update/%s/checkpointdelta' % (s, u), raw=pl.delta([edit(off, off + 2, 'R%d' % k)], new, seq),
                 auth=ut, gz=True)
        text = new
    c.expect('deltas: a wrong hash after the restart is still refused', 409, 'PATCH',
             '%s/update/%s/checkpointdelta' % (s, u), raw=pl.delta([], text, seq + 1, '0' * 64), auth=ut, gz=True)
    c.say(export_text(c, s) == text.encode(), 'deltas: export after the restart is exact', 'export differs')
    c.expect('deltas: complete', 200, 'POST', '%s/update/%s/complete' % (s, u), {'status': 'succeeded'}, ut)
    c.say(export_text(c, s) == text.encode(), 'deltas: after complete the stored text is exact', 'export differs')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('scenario', choices=['walkthrough', 'bad-input', 'concurrency', 'lease', 'user', 'deltas-a',
                                         'deltas-b'])
    ap.add_argument('--state', default='')
    ap.add_argument('--base', required=True)
    ap.add_argument('--token', required=True)
    ap.add_argument('--org', default='acme')
    ap.add_argument('--max-inflated', type=int, default=1 << 20)
    ap.add_argument('--lease', type=int, default=60)
    ap.add_argument('--expect-login', default='')
    a = ap.parse_args()
    c = CLI(a.base, a.token, a.org)
    if a.scenario == 'walkthrough':
        walkthrough(c)
    elif a.scenario == 'bad-input':
        bad_input(c, a.max_inflated)
    elif a.scenario == 'concurrency':
        concurrency(c)
    elif a.scenario.startswith('deltas-'):
        deltas(c, a.state, a.scenario[-1])
    elif a.scenario == 'lease':
        lease(c, a.lease)
    else:
        c.expect('login as %s' % a.expect_login, 200, 'GET', '/api/user',
                 check=lambda d: d['githubLogin'] == a.expect_login)
    return 1 if c.failed else 0


if __name__ == '__main__':
    sys.exit(main())
