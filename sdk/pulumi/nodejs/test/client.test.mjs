// The typed HTTP client against a real attestd (no Pulumi involved).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { startAttestd, makeEk, deadPort, cleanup } from "./lib/attestd.mjs";

const require = createRequire(import.meta.url);
const { AttestationClient, ekMaterialBase64, isAttestationError } = require("../bin");

after(cleanup);

async function rejects(promise, status, detailRe) {
    try {
        await promise;
    } catch (e) {
        assert.ok(isAttestationError(e, status), `expected an AttestationError ${status}, got ${e}`);
        assert.match(e.detail, detailRe);
        assert.ok(e.message.includes(e.detail), "the message carries the service's detail");
        return e;
    }
    assert.fail(`expected a ${status}`);
}

test("client: every call, and errors with the service's detail", async () => {
    const svc = await startAttestd({ ITL_DUAL_CONTROL_ROLES: "controlplane", BREAK_GLASS_TOKEN: "glass" });
    const c = new AttestationClient(`${svc.base}/`, svc.admin);
    const anon = new AttestationClient(svc.base);
    const ek = makeEk("client-1"), ek2 = makeEk("client-2");

    assert.equal(ekMaterialBase64(ek.pem), Buffer.from(ek.pem).toString("base64"), "PEM text is base64-encoded");
    assert.equal(ekMaterialBase64("QUJD\nREVG"), "QUJDREVG", "base64 passes through");

    const r = await c.register({ ek_fingerprint: ek.fp, ek_cert_pem: ekMaterialBase64(ek.pem), hw_serial: "S1" }, true);
    assert.equal(r.status, "registered");
    assert.equal(r.ek_fingerprint, ek.fp);
    assert.equal(r.config_token, null);
    const p = await anon.register({ ek_fingerprint: ek2.fp, ek_cert_pem: ekMaterialBase64(ek2.pem), desired_role: "controlplane" }, false);
    assert.equal(p.status, "pending_approval", "without the operator token: pending");

    const m = await c.getMachine(r.machine_id);
    assert.equal(m.hw_serial, "S1");
    assert.equal((await c.whoami()).identity, "SYSTEM");

    const a = await c.approve(r.machine_id, { role: "worker-app", hostname: "w-01", assigned_ip: "10.9.0.1" });
    assert.equal(a.approved, true);
    assert.equal(a.machine.assigned_ip, "10.9.0.1/32");
    const v = await c.approve(p.machine_id, { role: "controlplane" });
    assert.equal(v.approved, false, "dual control: a vote");
    assert.deepEqual([v.vote.status, v.vote.approvals_received, v.vote.approvals_required], ["pending_second_approval", 1, 2]);
    const votes = await c.approvals(p.machine_id);
    assert.deepEqual(votes.map((x) => [x.operator_cn, x.consumed]), [["SYSTEM", false]]);
    await rejects(c.approve(p.machine_id, { role: "controlplane" }), 409, /already voted/);

    assert.equal((await c.lock(r.machine_id, "test")).status, "locked");
    assert.equal((await c.unlock(r.machine_id)).status, "registered");
    const rv = await c.revoke(r.machine_id, false, "done");
    assert.deepEqual([rv.status, rv.wipe_pending], ["revoked", false]);
    await rejects(c.revoke(r.machine_id, false), 409, /already revoked/);

    await rejects(c.getMachine("0f0f0f0f-0000-0000-0000-000000000000"), 404, /not found/);
    await rejects(new AttestationClient(svc.base, "nope").getMachine(r.machine_id), 401, /./);
    await rejects(c.register({ ek_fingerprint: "zz", ek_cert_pem: "AAAA" }, true), 422, /^ek_fingerprint: /);
    await rejects(c.approve(p.machine_id, { role: "chef" }), 422, /^role: must be one of/);

    const dead = await deadPort();
    const e = await rejects(new AttestationClient(`http://127.0.0.1:${dead}`, "tok-secret-123").whoami(), 0, /ECONNREFUSED/);
    assert.match(e.message, /is unreachable/);
    assert.ok(!e.message.includes("tok-secret-123"), "the token never appears in errors");
    assert.equal(await svc.stop(), 0, "attestd shut down cleanly");
});
