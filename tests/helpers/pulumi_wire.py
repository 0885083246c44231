"""pulumi_wire.py - the wire side of the stand-in Pulumi CLI (pulumi-cli.py):
one API call exactly as the CLI 3.260 makes it (headers, gzip bodies,
`token` / `update-token` auth) with the checks the CLI applies to every
answer, the section 9.3 checkpoint and delta payloads, and the request
bodies of an update (../shared/reference/pulumi.md)."""

import gzip
import hashlib
import http.client
import json
import sys
import urllib.parse

UA = 'pulumi-cli/1 (v3.260.0; linux; cmd=%s)'


class Fail(Exception):
    pass


def no_floats(s):
    raise Fail('a number is not an integer: %s' % s)


class CLI:
    def __init__(self, base, token, org, cmd='up'):
        self.base, self.token, self.org, self.cmd = base, token, org, cmd
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.failed = 0

    def say(self, ok, what, why=''):
        if ok:
            print('PASS ' + what)
        else:
            self.failed += 1
            print('FAIL %s: %s' % (what, why))
        sys.stdout.flush()

    def call(self, method, path, body=None, auth='token', gz=False, raw=None, headers=None):
        """One API call exactly as the CLI makes it; returns (status, json or None, bytes)."""
        h = {'Content-Type': 'application/json', 'Accept': 'application/vnd.pulumi+9',
             'Accept-Encoding': 'gzip', 'User-Agent': UA % self.cmd}
        if auth == 'token':
            h['Authorization'] = 'token ' + self.token
        elif auth and auth.startswith('update-token '):
            h['Authorization'] = auth
        elif auth and auth.startswith('token '):
            h['Authorization'] = auth
        data = raw
        if data is None and body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body, separators=(',', ':')).encode()
        if data is not None and gz:
            data = gzip.compress(data)
            h['Content-Encoding'] = 'gzip'
        if headers:
            h.update(headers)
        c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.read()
        enc = r.getheader('Content-Encoding')
        c.close()
        if enc not in (None, 'gzip', 'x-gzip'):
            raise Fail('Content-Encoding %r (the CLI only decodes gzip)' % enc)
        if enc:
            out = gzip.decompress(out)
        doc = None
        if out and method != 'HEAD':
            try:
                doc = json.loads(out, parse_float=no_floats)
            except ValueError:
                doc = None
        # section 0.1: the CLI takes the status from the body's "code"
        if r.status >= 400 and doc is not None and (not isinstance(doc, dict) or doc.get('code') != r.status):
            raise Fail('%s %s: %d error body without "code": %d: %r' % (method, path, r.status, r.status, out[:200]))
        return r.status, doc, out

    def expect(self, what, want, method, path, body=None, auth='token', gz=False, check=None, raw=None,
               headers=None):
        try:
            st, doc, out = self.call(method, path, body, auth, gz, raw, headers)
        except Fail as e:
            self.say(False, what, str(e))
            return None
        except (OSError, http.client.HTTPException) as e:
            self.say(False, what, 'transport: %s' % e)
            return None
        wants = want if isinstance(want, (list, tuple)) else [want]
        if st not in wants:
            self.say(False, what, 'status %d, want %s: %r' % (st, wants, out[:300]))
            return None
        if check is not None:
            try:
                ok = check(doc)
            except Exception as e:  # noqa: BLE001 - a failed check is a FAIL line
                ok, out = False, ('%s: %r' % (e, out[:300])).encode()
            if not ok:
                self.say(False, what, 'check failed: %r' % out[:3000])
                return None
        self.say(True, what)
        return doc if doc is not None else {}


# ---- section 9.3: checkpoint texts and deltas, byte-exact ------------------------


def edit(s, e, text):
    return {'Span': {'uri': '', 'start': {'line': 1, 'column': 1, 'offset': s},
                     'end': {'line': 1, 'column': 1, 'offset': e}}, 'NewText': text}


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Payloads:
    def __init__(self, base, org, proj, stack):
        surn = 'urn:pulumi:%s::%s::pulumi:pulumi:Stack::%s-%s' % (stack, proj, proj, stack)
        curn = 'urn:pulumi:%s::%s::pulumi:pulumi:Stack$my:component:Thing::thing' % (stack, proj)
        self.h1 = ('{"version":3,"deployment":{"manifest":{"time":"2026-01-01T00:00:00Z","magic":"",'
                   '"version":"v3.260.0"},"secrets_providers":{"type":"service","state":{"url":"%s",'
                   '"owner":"%s","project":"%s","stack":"%s"}},"metadata":{},"resources":[' % (base, org, proj, stack))
        # key order and \u003c escapes: a server that re-serializes breaks the hashes
        self.r1 = ('{"urn":"%s","custom":false,"type":"pulumi:pulumi:Stack","outputs":'
                   '{"html":"a\\u003cb\\u0026c\\u003ed","n":1}}' % surn)
        self.r2 = '{"urn":"%s","custom":false,"type":"my:component:Thing","parent":"%s"}' % (curn, surn)
        tail = ']}}'
        self.t1 = self.h1 + self.r1 + tail
        self.t2 = self.h1 + self.r1 + ',' + self.r2 + tail
        e = len(self.h1) + len(self.r1)
        self.d2 = [edit(e, e, ',' + self.r2)]
        h3 = self.h1.replace('2026-01-01T00:00:00Z', '2026-01-01T00:00:05Z')
        r2b = self.r2[:-1] + ',"outputs":{"x":"y"}}'
        self.t3 = h3 + self.r1 + ',' + r2b + tail
        s2 = len(self.h1) + len(self.r1) + 1
        self.d3 = [edit(0, len(self.h1), h3), edit(s2, s2 + len(self.r2), r2b)]
        self.t4 = self.t3.replace('"n":1', '"n":4')
        self.empty = (self.h1[:-len(',"resources":[')] + '}}')

    @staticmethod
    def verbatim(text, seq):
        return ('{"version":3,"untypedDeployment":%s,"sequenceNumber":%d}' % (text, seq)).encode()

    @staticmethod
    def delta(edits, text, seq, hash_=None):
        return json.dumps({'version': 3, 'checkpointHash': hash_ or sha(text.encode()), 'sequenceNumber': seq,
                           'deploymentDelta': edits}, separators=(',', ':')).encode()


def program(proj, dry, ct=None):
    cfg = {}
    if ct:
        cfg['%s:dbPassword' % proj] = {'string': ct, 'secret': True, 'object': False}
    return {'name': proj, 'runtime': 'nodejs', 'main': '', 'description': '',
            'options': {'localPolicyPackPaths': [], 'color': 'raw', 'dryRun': dry, 'parallel': 16,
                        'showConfig': False, 'showReplacementSteps': False, 'showNames': False,
                        'summary': False, 'debug': False},
            'config': cfg, 'metadata': {'message': 'replayed', 'environment': {'exec.kind': 'cli'}}}


START = {'tags': {'pulumi:project': 'proj', 'pulumi:runtime': 'nodejs'}, 'journalVersion': 1}


def stack_path(org, proj, stack):
    return '/api/stacks/%s/%s/%s' % (org, proj, stack)


def events(seq0, n, summary=None):
    ev = [{'sequence': seq0 + i, 'timestamp': 1767225600 + seq0 + i,
           'stdoutEvent': {'message': 'line %d' % (seq0 + i), 'color': 'raw'}} for i in range(n)]
    if summary is not None:
        ev.append({'sequence': seq0 + n, 'timestamp': 1767225700, 'summaryEvent': summary})
    return {'events': ev}


def summary(changes, preview):
    return {'maybeCorrupt': False, 'durationSeconds': 1, 'resourceChanges': changes, 'PolicyPacks': {},
            'isPreview': preview, 'result': 'succeeded'}


def start_update(c, s, kind='update', dry=False, ct=None, what=''):
    """create + start; returns (id, token, version) or (None, None, None)."""
    d = c.expect('%screate %s%s' % (what, kind, ' (dry run)' if dry else ''), 200, 'POST', '%s/%s' % (s, kind),
                 program('proj', dry, ct), check=lambda d: isinstance(d['updateID'], str) and d['updateID'])
    if d is None:
        return None, None, None
    u = d['updateID']
    d = c.expect('%sstart %s: a non-empty token, no journalVersion' % (what, kind), 200, 'POST',
                 '%s/update/%s' % (s, u), START,
                 check=lambda d: d['token'] and isinstance(d['version'], int) and not d.get('journalVersion'))
    if d is None:
        return u, None, None
    return u, d['token'], d['version']


def export_text(c, s):
    st, doc, out = c.call('GET', s + '/export')
    return out if st == 200 else None


