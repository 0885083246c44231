#!/usr/bin/env python3
"""Loopback stand-in for what agent attestors call out to (t0019):
an OIDC issuer (discovery + JWKS, as Kubernetes' service account issuer
serves them), the agent's own http_dns challenge endpoint, and an
attestation extension webhook.

  agent-stub.py DIR PORTFILE

GET  /<path>   serves DIR/<path> (404 when absent); counts fetches of
               each path in DIR/hits.<basename>
POST /decide   records the request body in DIR/decide.req and answers
               DIR/decide.json (status from DIR/decide.status, default 200)
The bound port is written to PORTFILE."""
import http.server
import os
import sys

root, portfile = sys.argv[1], sys.argv[2]


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        rel = self.path.split("?", 1)[0].lstrip("/")
        if ".." in rel.split("/"):
            return self._send(400, b"bad path")
        p = os.path.join(root, rel)
        hits = os.path.join(root, "hits." + os.path.basename(rel))
        n = int(open(hits).read()) if os.path.exists(hits) else 0
        with open(hits, "w") as f:
            f.write(str(n + 1))
        if not os.path.isfile(p):
            return self._send(404, b"{}")
        with open(p, "rb") as f:
            self._send(200, f.read())

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with open(os.path.join(root, "decide.req"), "wb") as f:
            f.write(body)
        st = os.path.join(root, "decide.status")
        code = int(open(st).read()) if os.path.exists(st) else 200
        with open(os.path.join(root, "decide.json"), "rb") as f:
            self._send(code, f.read())


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
