// examples/pulumi-demo: it type-checks (tsc --noEmit), and the program
// itself (TypeScript, run by @pulumi/pulumi's cmd/run as the Node.js
// language host does) works against a real attestd through the stand-in
// engine: two machines, two approvals, two RandomPasswords, secret bundles.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Engine, Secret, reveal } from "./lib/engine.mjs";
import { startAttestd, makeEk, api, cleanup, SRCDIR, TMP } from "./lib/attestd.mjs";

const DEMO = join(SRCDIR, "examples/pulumi-demo");
const cleanups = [];
after(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanup();
});

test("the demo's dependencies are installed (scripts/deps.sh runs npm ci there)", () => {
    assert.ok(existsSync(join(DEMO, "node_modules/@pulumi/pulumi/package.json")), "run scripts/deps.sh");
    assert.ok(existsSync(join(DEMO, "node_modules/pulumi-itl-attestation/bin/index.js")), "the SDK is linked and built");
});

test("the demo program type-checks (tsc --noEmit)", () => {
    execFileSync(process.execPath, [join(DEMO, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", DEMO],
        { stdio: "pipe" });
});

test("pulumi up / destroy of the demo against attestd", async () => {
    const svc = await startAttestd();
    cleanups.push(() => svc.stop());
    const ekDir = join(TMP, "demo-ek");
    mkdirSync(ekDir, { recursive: true });
    const eks = {};
    for (const n of ["cp-node-01", "worker-node-01"]) {
        eks[n] = makeEk(n);
        copyFileSync(eks[n].file, join(ekDir, `${n}.pem`));
    }
    const eng = new Engine({ project: "attestation-demo", stack: "dev", pulumiDir: join(DEMO, "node_modules/@pulumi/pulumi") });
    cleanups.push(() => eng.close());
    const config = {
        "attestation:endpoint": svc.base,
        "attestation:token": svc.admin,
        "attestation:ekDir": ekDir,
    };
    let r = await eng.up(DEMO, { config, secretKeys: ["attestation:token"], cwd: DEMO, typescript: true });
    assert.ok(r.ok, `code=${r.code} errors=${JSON.stringify(r.errors)}\n${r.stderr}\n${JSON.stringify(r.logs.filter((l) => l.severity > 1))}`);
    assert.equal(r.steps.filter((s) => s.op === "create").length, 6, "2 machines, 2 approvals, 2 passwords");

    for (const [n, role, host, ip] of [["cp-node-01", "controlplane", "cp-node-01.cluster.local", "10.0.1.10/32"],
        ["worker-node-01", "worker-app", "worker-node-01.cluster.local", "10.0.1.20/32"]]) {
        const out = r.outputs.machines[n];
        assert.equal(out.status, "registered");
        assert.equal(out.approval, "registered");
        const live = await api(svc.base, "GET", `/api/v1/machines/${out.machine_id}`, svc.admin);
        assert.equal(live.body.ek_fingerprint, eks[n].fp, "fingerprint computed by the program");
        assert.deepEqual([live.body.role, live.body.hostname, live.body.assigned_ip], [role, host, ip]);
        const bundle = r.outputs.bootstrapBundles[n];
        assert.ok(bundle instanceof Secret, "the bootstrap bundle is a secret stack output");
        const b = JSON.parse(bundle.value);
        assert.equal(b.machine_id, out.machine_id);
        assert.match(b.enrollment_token, /^[A-Za-z0-9]{44}$/);
        assert.equal(b.config_token, null, "no config token before the machine attests");
        const pw = eng.resource(`${n}-enrollment-token`);
        assert.ok(pw.outputs.result instanceof Secret);
        assert.ok(eng.resource(n).outputs.ek_cert_pem instanceof Secret);
    }

    r = await eng.up(DEMO, { config, secretKeys: ["attestation:token"], cwd: DEMO, typescript: true });
    assert.ok(r.ok, JSON.stringify(r.errors));
    assert.ok(r.steps.every((s) => s.op === "same"), `second up changes nothing: ${JSON.stringify(r.steps)}`);

    const ids = Object.values(reveal(r.outputs.machines)).map((m) => m.machine_id);
    r = await eng.destroy();
    assert.ok(r.ok, JSON.stringify(r.errors));
    for (const id of ids) {
        const live = await api(svc.base, "GET", `/api/v1/machines/${id}`, svc.admin);
        assert.equal(live.body.status, "revoked");
    }
    assert.equal(await svc.stop(), 0);
});
