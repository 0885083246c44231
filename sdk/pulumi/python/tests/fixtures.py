"""A real attestd on loopback (SQLite, port 0), EK certificates made with
openssl, and an OIDC issuer (discovery + JWKS) whose tokens jwtmint signs."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ATTESTD = os.environ["ATTESTD"]
JWTMINT = os.environ["JWTMINT"]
SRCDIR = os.environ["SRCDIR"]
TMP = tempfile.mkdtemp(prefix="attest-sdk-py-")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class Attestd:
    def __init__(self, **env):
        self.dir = tempfile.mkdtemp(dir=TMP)
        os.makedirs(f"{self.dir}/configs")
        for f in glob.glob(f"{SRCDIR}/examples/configs/*.yaml"):
            shutil.copy(f, f"{self.dir}/configs/")
        self.admin = f"py-admin-{os.getpid()}"
        full = dict(os.environ, ITL_DB_URL=f"sqlite:///{self.dir}/machines.db", ITL_CONFIG_CACHE_DIR=f"{self.dir}/configs",
                    ITL_ENROLLMENT_CA_DIR=f"{self.dir}/ca", ITL_SERVICE_URL="http://attest.test",
                    ITL_FACTORY_URL="http://127.0.0.1:9", ITL_FACTORY_TIMEOUT_SECONDS="2",
                    ITL_ADMIN_TOKEN=self.admin, ITL_THREADS="2", **env)
        self.log = open(f"{self.dir}/attestd.log", "w")
        self.proc = subprocess.Popen([ATTESTD, "--listen", "127.0.0.1:0", "--ready-file", f"{self.dir}/ready"],
                                     env=full, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(400):
            if os.path.exists(f"{self.dir}/ready") and _read(f"{self.dir}/ready").strip():
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            self.proc.kill()
        ready = f"{self.dir}/ready"
        if not os.path.exists(ready):
            raise RuntimeError("attestd did not start: " + _read(f"{self.dir}/attestd.log")[-2000:])
        self.base = "http://" + _read(ready).strip()

    def stop(self) -> int:
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        self.log.close()
        return rc


def make_ek(name: str) -> tuple:
    """(pem_text, canonical fingerprint) as make_ek in tests/lib/test-lib.sh."""
    key, pem = f"{TMP}/{name}.key", f"{TMP}/{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem,
                    "-days", "30", "-subj", f"/CN=test EK {name}", "-addext", "keyUsage=critical,keyEncipherment"],
                   check=True, capture_output=True)
    fp = subprocess.run(f"openssl x509 -in '{pem}' -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum",
                        shell=True, check=True, capture_output=True, text=True).stdout.split()[0]
    return _read(pem), fp


class Issuer:
    def __init__(self):
        self.key = f"{TMP}/issuer.key"
        subprocess.run(["openssl", "genrsa", "-out", self.key, "2048"], check=True, capture_output=True)
        self.kid = f"py-{os.getpid()}"
        jwk = json.loads(subprocess.run([JWTMINT, "jwk", "--key", self.key, "--kid", self.kid],
                                        check=True, capture_output=True, text=True).stdout)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = ({"issuer": issuer.iss, "jwks_uri": issuer.iss + "/jwks"}
                        if self.path == "/.well-known/openid-configuration" else {"keys": [jwk]})
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.iss = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.env = {"ITL_OIDC_ISSUER": self.iss, "ITL_OIDC_AUDIENCE": "attestation-service"}

    def mint(self, user: str) -> str:
        now = int(time.time())
        claims = {"iss": self.iss, "aud": "attestation-service", "sub": f"sub-{user}", "preferred_username": user,
                  "realm_access": {"roles": ["attestation-operator"]}, "iat": now, "nbf": now, "exp": now + 900}
        return subprocess.run([JWTMINT, "sign", "--key", self.key, "--alg", "RS256", "--kid", self.kid, "--typ",
                               "at+jwt", "--claims", json.dumps(claims)], check=True, capture_output=True,
                              text=True).stdout.strip()

    def close(self):
        self.server.shutdown()
