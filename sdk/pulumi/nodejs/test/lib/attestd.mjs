// Test fixtures on loopback only: a real attestd (SQLite, port 0) started
// and stopped by the test, EK certificates made with openssl, and an OIDC
// issuer (discovery + JWKS over HTTP) whose tokens are minted with the
// project's jwtmint helper, so operator identities go through attestd's
// real OIDC validation.
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, readdirSync, copyFileSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const ATTESTD = process.env.ATTESTD;
export const JWTMINT = process.env.JWTMINT;
export const SRCDIR = process.env.SRCDIR;
export const TMP = mkdtempSync(join(process.env.TMPDIR || tmpdir(), "attest-sdk-"));

if (!ATTESTD || !SRCDIR) {
    throw new Error("ATTESTD and SRCDIR must be set (tests/sdk/nodejs.sh sets them from meson)");
}

let n = 0;

/**
 * Start attestd on 127.0.0.1:0 with a fresh SQLite database.  Resolves to
 * { base, admin, log, stop() }; stop() sends SIGTERM and resolves to the
 * exit status (0 = clean shutdown; under ASan a leak makes it non-zero).
 */
export async function startAttestd(env = {}) {
    const dir = join(TMP, `attestd-${++n}`);
    mkdirSync(join(dir, "configs"), { recursive: true });
    for (const f of readdirSync(join(SRCDIR, "examples/configs"))) {
        if (f.endsWith(".yaml")) copyFileSync(join(SRCDIR, "examples/configs", f), join(dir, "configs", f));
    }
    const admin = `sdk-admin-${process.pid}-${n}`;
    const log = join(dir, "attestd.log");
    const { openSync } = await import("node:fs");
    const fd = openSync(log, "w");
    const child = spawn(ATTESTD, ["--listen", "127.0.0.1:0", "--ready-file", join(dir, "ready")], {
        env: {
            ...process.env,
            ITL_DB_URL: `sqlite:///${dir}/machines.db`,
            ITL_CONFIG_CACHE_DIR: join(dir, "configs"),
            ITL_ENROLLMENT_CA_DIR: join(dir, "ca"),
            ITL_SERVICE_URL: "http://attest.test",
            ITL_FACTORY_URL: "http://127.0.0.1:9",
            ITL_FACTORY_TIMEOUT_SECONDS: "2",
            ITL_ADMIN_TOKEN: admin,
            ITL_THREADS: "2",
            ...env,
        },
        stdio: ["ignore", fd, fd],
    });
    let exited = null;
    const done = new Promise((resolve) => child.on("exit", (code, sig) => { exited = code ?? 128; resolve(code ?? (sig ? 128 : 1)); }));
    for (let i = 0; i < 400 && exited === null; i++) {
        if (existsSync(join(dir, "ready")) && readFileSync(join(dir, "ready"), "utf8").trim()) break;
        await sleep(50);
    }
    if (!existsSync(join(dir, "ready"))) {
        child.kill("SIGKILL");
        throw new Error(`attestd did not start:\n${readFileSync(log, "utf8").slice(-2000)}`);
    }
    const base = `http://${readFileSync(join(dir, "ready"), "utf8").trim()}`;
    return {
        base, admin, log, dir,
        async stop() {
            if (exited === null) child.kill("SIGTERM");
            return done;
        },
    };
}

/** An RSA EK certificate as make_ek in tests/lib/test-lib.sh: { pem, fp } (fp = SHA-384 of the SPKI). */
export function makeEk(name) {
    const key = join(TMP, `${name}.key`), pem = join(TMP, `${name}.pem`);
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem,
        "-days", "30", "-subj", `/CN=test EK ${name}`, "-addext", "keyUsage=critical,keyEncipherment"],
    { stdio: "ignore" });
    const spki = execFileSync("sh", ["-c", `openssl x509 -in '${pem}' -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum`]);
    return { pem: readFileSync(pem, "utf8"), file: pem, fp: spki.toString().split(" ")[0] };
}

/** Call the REST API directly (the "out of band" operator). */
export async function api(base, method, path, token, body) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, body: json, text };
}

/**
 * An OIDC issuer on loopback: /.well-known/openid-configuration and /jwks
 * for an RSA key generated now.  mint(user, roles) signs an access token
 * with jwtmint (RS256, typ at+jwt).
 */
export async function startIssuer() {
    if (!JWTMINT) throw new Error("JWTMINT must be set");
    const key = join(TMP, "issuer.key");
    execFileSync("openssl", ["genrsa", "-out", key, "2048"], { stdio: "ignore" });
    const kid = `sdk-${process.pid}`;
    const jwk = JSON.parse(execFileSync(JWTMINT, ["jwk", "--key", key, "--kid", kid]).toString());
    let iss = "";
    const server = createServer((req, res) => {
        const body = req.url === "/.well-known/openid-configuration"
            ? { issuer: iss, jwks_uri: `${iss}/jwks` }
            : req.url === "/jwks" ? { keys: [jwk] } : null;
        res.writeHead(body ? 200 : 404, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body || { error: "not found" }));
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    iss = `http://127.0.0.1:${server.address().port}`;
    const audience = "attestation-service";
    return {
        iss, audience,
        env: { ITL_OIDC_ISSUER: iss, ITL_OIDC_AUDIENCE: audience },
        mint(user, roles = ["attestation-operator"]) {
            const now = Math.floor(Date.now() / 1000);
            const claims = {
                iss, aud: audience, sub: `sub-${user}`, preferred_username: user, realm_access: { roles },
                iat: now, nbf: now, exp: now + 900,
            };
            return execFileSync(JWTMINT, ["sign", "--key", key, "--alg", "RS256", "--kid", kid, "--typ", "at+jwt",
                "--claims", JSON.stringify(claims)]).toString().trim();
        },
        close() { return new Promise((r) => server.close(r)); },
    };
}

/** A loopback port nothing listens on (the "service down" case). */
export async function deadPort() {
    const s = createServer();
    await new Promise((r) => s.listen(0, "127.0.0.1", r));
    const port = s.address().port;
    await new Promise((r) => s.close(r));
    return port;
}

export function cleanup() {
    if (!process.env.KEEP_TMP) rmSync(TMP, { recursive: true, force: true });
}
