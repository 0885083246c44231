// The dynamic providers driven the way the Pulumi engine drives them (see
// lib/engine.mjs): a program registers resources over gRPC, the real
// dynamic-provider host deserialises the providers and runs them against a
// real attestd on loopback.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { Engine, Secret, reveal } from "./lib/engine.mjs";
import { startAttestd, startIssuer, makeEk, api, deadPort, cleanup } from "./lib/attestd.mjs";

const PROGRAM = join(dirname(fileURLToPath(import.meta.url)), "programs/spec.js");
const toStop = [];
after(async () => {
    for (const s of toStop.reverse()) await s();
    cleanup();
});

async function service(env = {}) {
    const svc = await startAttestd(env);
    let stopped = false;
    const stop = async () => {
        if (!stopped) { stopped = true; return svc.stop(); }
        return 0;
    };
    toStop.push(stop);
    return { ...svc, stop };
}

function newEngine(stack) {
    const e = new Engine({ stack });
    toStop.push(() => e.close());
    return e;
}

function cfg(base, token, spec, extra = {}) {
    return {
        config: {
            "attestation-sdk:endpoint": base,
            "attestation-sdk:token": token,
            "attestation-sdk:spec": JSON.stringify(spec),
            ...extra,
        },
        secretKeys: ["attestation-sdk:token", "attestation-sdk:token2"],
    };
}

const ops = (r) => r.steps.map((s) => `${s.op}:${s.urn.split("::").pop()}`);
const explain = (r) => `errors=${JSON.stringify(r.errors)}\nlogs=${JSON.stringify(r.logs)}\n${r.stderr || ""}`;

function machineSpec(name, ek, args = {}) {
    return { kind: "machine", name, args: { ek_fingerprint: ek.fp, ek_cert_pem: ek.pem, hw_serial: `SN-${name}`, ...args } };
}

function approvalSpec(name, machine, args = {}) {
    return { kind: "approval", name, args: { machine_id: { $ref: `${machine}.machine_id` }, role: "worker-app", ...args } };
}

test("lifecycle: create, no-op, update in place, refresh, drift after lock and revoke, replace, destroy", async (t) => {
    const svc = await service();
    const eng = newEngine("lifecycle");
    let ek = makeEk("life-1");
    const spec = (mArgs = {}, aArgs = {}) => [
        machineSpec("m1", ek, { hw_product: "ProLiant", hw_mac: "52-54-00-AA-BB-01", ...mArgs }),
        approvalSpec("a1", "m1", { hostname: "node-01", assigned_ip: "10.0.1.10", reason: "rack 1", ...aArgs }),
    ];

    let r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec()));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["create:m1", "create:a1"]);
    const m1 = eng.resource("m1"), a1 = eng.resource("a1");
    const mid = m1.id;
    assert.match(mid, /^[0-9a-f-]{36}$/);
    assert.equal(reveal(m1.outputs.status), "registered", "registered with the operator token: pre-approved");
    assert.equal(reveal(m1.outputs.hw_mac), "52:54:00:aa:bb:01", "check normalised the MAC");
    assert.equal(reveal(m1.outputs.config_token), null, "no config token before the machine attests");
    assert.equal(reveal(a1.outputs.approved), true);
    assert.equal(reveal(a1.outputs.approved_ip), "10.0.1.10/32");
    let live = await api(svc.base, "GET", `/api/v1/machines/${mid}`, svc.admin);
    assert.equal(live.body.hostname, "node-01");
    assert.equal(live.body.hw_mac, "52:54:00:aa:bb:01");

    await t.test("secrets stay secret in state and in stack outputs", () => {
        for (const k of ["token", "ek_cert_pem", "config_token"]) {
            assert.ok(m1.outputs[k] instanceof Secret, `RegisteredMachine.${k} is a secret`);
        }
        assert.ok(m1.inputs.token instanceof Secret && m1.inputs.ek_cert_pem instanceof Secret);
        assert.ok(a1.outputs.token instanceof Secret);
        for (const k of ["machine_id", "status", "ek_fingerprint"]) {
            assert.ok(!(m1.outputs[k] instanceof Secret), `${k} is not a secret`);
        }
        assert.ok(r.outputs.m1.config_token instanceof Secret, "the exported config_token is a secret");
        assert.equal(r.outputs.m1.machine_id, mid);
    });

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec()));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["same:m1", "same:a1"], "nothing changed: no step");

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec({ hw_serial: "SN-NEW" }, { hostname: "node-01b", assigned_ip: "10.0.1.11/24" })));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["update:m1", "update:a1"]);
    live = await api(svc.base, "GET", `/api/v1/machines/${mid}`, svc.admin);
    assert.equal(live.body.hw_serial, "SN-NEW", "hardware details re-registered");
    assert.equal(live.body.hostname, "node-01b", "re-approved with the new hostname");
    assert.equal(live.body.assigned_ip, "10.0.1.11/24");
    assert.equal(eng.resource("m1").id, mid, "same machine");
    const audit = await api(svc.base, "GET", `/api/v1/audit?machine_id=${mid}`, svc.admin);
    assert.deepEqual(audit.body.map((a) => a.action).reverse(), ["register", "approve", "re_register", "approve"]);
    assert.ok(audit.body.every((a) => a.operator_cn === "SYSTEM"), "audited as the token's identity");

    r = await eng.refresh();
    assert.deepEqual(ops(r), ["same:m1", "same:a1"], "refresh: no drift");

    // ---- locked out of band -------------------------------------------------
    let oob = await api(svc.base, "POST", `/api/v1/machines/${mid}/lock`, svc.admin, { reason: "incident 7" });
    assert.equal(oob.status, 200);
    r = await eng.refresh();
    assert.deepEqual(ops(r), ["refresh-update:m1", "refresh-update:a1"]);
    assert.equal(reveal(eng.resource("m1").outputs.status), "locked", "refresh sees the lock");
    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec({ hw_serial: "SN-NEW" }, { hostname: "node-01b", assigned_ip: "10.0.1.11/24" })));
    assert.equal(r.ok, false, "a locked EK cannot be registered again");
    assert.deepEqual(r.steps[0], { op: "replace", urn: eng.resource("m1").urn, replaces: ["status"] }, "up proposes the replacement");
    assert.match(r.errors.join("\n"), /409 Conflict: Machine [0-9a-f-]+ is locked — re-registration is not allowed/);
    live = await api(svc.base, "GET", `/api/v1/machines/${mid}`, svc.admin);
    assert.equal(live.body.status, "locked", "create-before-delete: the refused replacement left the machine as it was");

    oob = await api(svc.base, "POST", `/api/v1/machines/${mid}/unlock`, svc.admin, {});
    assert.equal(oob.status, 200);
    r = await eng.refresh();
    assert.equal(reveal(eng.resource("m1").outputs.status), "registered");
    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec({ hw_serial: "SN-NEW" }, { hostname: "node-01b", assigned_ip: "10.0.1.11/24" })));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["same:m1", "same:a1"], "unlocked outside Pulumi: in sync again");

    // ---- revoked out of band ------------------------------------------------
    oob = await api(svc.base, "POST", `/api/v1/machines/${mid}/revoke`, svc.admin, { reason: "stolen" });
    assert.equal(oob.status, 200);
    r = await eng.refresh();
    assert.equal(reveal(eng.resource("m1").outputs.status), "revoked");
    assert.equal(reveal(eng.resource("a1").outputs.status), "revoked");
    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec({ hw_serial: "SN-NEW" }, { hostname: "node-01b", assigned_ip: "10.0.1.11/24" })));
    assert.equal(r.ok, false);
    assert.equal(r.steps[0].op, "replace");
    assert.match(r.errors.join("\n"), /409 Conflict: Machine [0-9a-f-]+ is revoked — re-registration is not allowed/);

    // replacement hardware: a new EK replaces the revoked machine, the approval follows
    ek = makeEk("life-2");
    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec({ hw_serial: "SN-NEW" }, { hostname: "node-01b", assigned_ip: "10.0.1.11/24" })));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["replace:m1", "create:m1", "replace:a1", "create:a1", "delete:m1", "delete:a1"]);
    const mid2 = eng.resource("m1").id;
    assert.notEqual(mid2, mid);
    live = await api(svc.base, "GET", `/api/v1/machines/${mid2}`, svc.admin);
    assert.equal(live.body.hostname, "node-01b", "the hostname of the revoked machine is free again");

    // ---- destroy ---------------------------------------------------------------
    r = await eng.destroy();
    assert.ok(r.ok, JSON.stringify(r.errors));
    assert.deepEqual(ops(r), ["delete:a1", "delete:m1", "delete:attestation-sdk-lifecycle"]);
    live = await api(svc.base, "GET", `/api/v1/machines/${mid2}`, svc.admin);
    assert.equal(live.body.status, "revoked");
    assert.equal(live.body.wipe_pending, false, "never a wipe unless asked");
    const trail = await api(svc.base, "GET", `/api/v1/audit?machine_id=${mid2}&action=revoke`, svc.admin);
    assert.equal(trail.body.length, 1, "revoked once (the machine's delete saw it revoked already)");
    assert.match(trail.body[0].detail, /pulumi destroy/);
    assert.equal(await svc.stop(), 0, "attestd shut down cleanly");
});

test("keep_on_delete and wipe_on_delete", async () => {
    const svc = await service();
    const eng = newEngine("keep");
    const k1 = makeEk("keep-1"), k2 = makeEk("keep-2"), k3 = makeEk("keep-3");
    const spec = [
        machineSpec("kept", k1, { keep_on_delete: true }),
        approvalSpec("kept-ok", "kept", { keep_on_delete: true }),
        machineSpec("half", k2),
        approvalSpec("half-ok", "half", { keep_on_delete: true }),
        machineSpec("wiped", k3, { wipe_on_delete: true, revoke_reason: "decommissioned by pulumi" }),
    ];
    let r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec));
    assert.ok(r.ok, explain(r));
    const ids = Object.fromEntries(["kept", "half", "wiped"].map((n) => [n, eng.resource(n).id]));
    r = await eng.destroy();
    assert.ok(r.ok, JSON.stringify(r.errors));
    const get = async (n) => (await api(svc.base, "GET", `/api/v1/machines/${ids[n]}`, svc.admin)).body;
    assert.equal((await get("kept")).status, "registered", "keep_on_delete on both: the machine stays");
    assert.equal((await get("half")).status, "revoked", "keep_on_delete only on the approval: the RegisteredMachine still revokes");
    const wiped = await get("wiped");
    assert.equal(wiped.status, "revoked");
    assert.equal(wiped.wipe_pending, true, "wipe_on_delete asks for the remote wipe");
    const audit = await api(svc.base, "GET", `/api/v1/audit?machine_id=${ids.wiped}&action=revoke`, svc.admin);
    assert.match(audit.body[0].detail, /decommissioned by pulumi/);
    assert.equal(await svc.stop(), 0);
});

test("dual control: two operators (OIDC tokens) approve through two `pulumi up`s", async () => {
    const issuer = await startIssuer();
    toStop.push(() => issuer.close());
    const svc = await service({ ...issuer.env, ITL_DUAL_CONTROL_ROLES: "controlplane", ITL_DUAL_CONTROL_QUORUM: "2" });
    const alice = issuer.mint("alice"), bob = issuer.mint("bob");
    const who = await api(svc.base, "GET", "/api/v1/auth/whoami", alice);
    assert.equal(who.status, 200, who.text);
    assert.equal(who.body.method, "oidc", "the token went through the service's OIDC validation");
    const eng = newEngine("dual");
    const ek = makeEk("dual-1");
    const spec = [
        machineSpec("cp", ek, { desired_role: "controlplane", pre_approve: false }),
        approvalSpec("cp-ok", "cp", { role: "controlplane", hostname: "cp-01", assigned_ip: "10.0.0.1/24" }),
    ];

    let r = await eng.up(PROGRAM, cfg(svc.base, alice, spec));
    assert.ok(r.ok, `a pending vote is not a failure\n${explain(r)}`);
    const mid = eng.resource("cp").id;
    let a = reveal(eng.resource("cp-ok").outputs);
    assert.equal(a.approved, false);
    assert.equal(a.status, "pending_second_approval");
    assert.equal(a.approvals_received, 1);
    assert.equal(a.approvals_required, 2);
    assert.match(a.message, /^waiting for 1 more approval from other operators/);
    assert.equal(r.outputs["cp-ok"].message, a.message, "the stack output says so");
    let live = await api(svc.base, "GET", `/api/v1/machines/${mid}`, alice);
    assert.equal(live.body.status, "pending_approval", "not approved by one operator");

    r = await eng.up(PROGRAM, cfg(svc.base, alice, spec));
    assert.ok(r.ok, `the same operator again: still waiting, no 409\n${explain(r)}`);
    assert.deepEqual(ops(r), ["same:cp", "update:cp-ok"]);
    assert.match(reveal(eng.resource("cp-ok").outputs.message), /waiting for 1 more approval/);
    const votes = await api(svc.base, "GET", `/api/v1/machines/${mid}/approvals`, alice);
    assert.equal(votes.body.length, 1, "no second vote by alice");

    r = await eng.refresh();
    assert.equal(reveal(eng.resource("cp-ok").outputs.approvals_received), 1, "refresh reads the open votes");

    r = await eng.up(PROGRAM, cfg(svc.base, bob, spec));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["update:cp", "update:cp-ok"]);
    a = reveal(eng.resource("cp-ok").outputs);
    assert.equal(a.approved, true, "bob's vote completes the quorum");
    assert.equal(a.status, "registered");
    live = await api(svc.base, "GET", `/api/v1/machines/${mid}`, bob);
    assert.equal(live.body.status, "registered");
    assert.equal(live.body.hostname, "cp-01");
    const audit = await api(svc.base, "GET", `/api/v1/audit?machine_id=${mid}`, bob);
    assert.deepEqual(audit.body.map((x) => `${x.action}/${x.operator_cn}`).reverse(),
        ["register/machine", "approve_vote/alice", "approve_vote/bob", "approve/bob"]);

    const viewer = issuer.mint("victor", ["attestation-viewer"]);
    r = await eng.up(PROGRAM, cfg(svc.base, viewer, spec));
    assert.equal(r.ok, false, "a token without the operator role");
    assert.match(r.errors.join("\n"), /403 Forbidden: .*victor does not hold the operator role/);
    assert.equal(await svc.stop(), 0);
});

test("service errors surface with the service's detail: 401, 409, 422, check failures, service down", async () => {
    const svc = await service();
    const eng = newEngine("errors");
    const ek = makeEk("err-1"), other = makeEk("err-2");

    let r = await eng.up(PROGRAM, cfg(svc.base, "wrong-token", [machineSpec("m", ek)]));
    assert.equal(r.ok, false);
    assert.match(r.errors.join("\n"), /POST \/api\/v1\/register answered 401 Unauthorized: .*check the operator token/);
    assert.equal(eng.resource("m"), undefined, "nothing in state");
    const none = await api(svc.base, "GET", "/api/v1/machines", svc.admin);
    assert.equal(none.body.length, 0, "nothing written");

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, [machineSpec("m", { fp: ek.fp, pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" })]));
    assert.equal(r.ok, false);
    assert.match(r.errors.join("\n"), /answered 422 Unprocessable Entity: ek_cert_pem: /);

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, [machineSpec("m", ek, { desired_role: "db" }), approvalSpec("a", "m", { role: "boss", assigned_ip: "10.0.0.300" })]));
    assert.equal(r.ok, false);
    assert.match(r.errors.join("\n"), /check failed: desired_role: must be one of controlplane, worker-infra, worker-app/);

    // 409: the hostname belongs to another machine
    const reg = await api(svc.base, "POST", "/api/v1/register", svc.admin,
        { ek_fingerprint: other.fp, ek_cert_pem: Buffer.from(other.pem).toString("base64") });
    await api(svc.base, "POST", `/api/v1/machines/${reg.body.machine_id}/approve`, svc.admin, { role: "worker-app", hostname: "taken-01" });
    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, [machineSpec("m", ek), approvalSpec("a", "m", { hostname: "taken-01" })]));
    assert.equal(r.ok, false);
    assert.match(r.errors.join("\n"), new RegExp(`approve answered 409 Conflict: hostname 'taken-01' is already assigned to machine ${reg.body.machine_id}`));
    assert.ok(eng.resource("m"), "the machine was created before the approval failed");

    const dead = await deadPort();
    r = await eng.up(PROGRAM, cfg(`http://127.0.0.1:${dead}`, svc.admin, [machineSpec("m", ek)]));
    assert.equal(r.ok, false);
    assert.match(r.errors.join("\n"), new RegExp(`attestation service at http://127.0.0.1:${dead} is unreachable \\(connect ECONNREFUSED`));
    assert.equal(await svc.stop(), 0);
});

test("AttestationPolicy: a cluster's agent attestation policies as code (seed 004's spirl_cluster_config)", async () => {
    const svc = await service();
    const eng = newEngine("policy");
    const doc = (names) => ["section: AgentAttestation", "schema: v1", "spec:", "  policies:",
        ...names.flatMap((n) => [`    - name: ${n}`, "      requiredAttestors:", "        - type: extension",
            "          config: {url: \"http://127.0.0.1:9/decide\"}"])].join("\n") + "\n";
    const spec = (document, args = {}) => [{ kind: "policy", name: "p1", args: { cluster_id: "ci", document, ...args } }];

    let r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec(doc(["runners"]))));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["create:p1"]);
    assert.equal(eng.resource("p1").id, "ci");
    assert.equal(reveal(eng.resource("p1").outputs.version), 1);
    assert.deepEqual(reveal(eng.resource("p1").outputs.policies), ["runners"]);
    let live = await api(svc.base, "GET", "/api/v1/clusters/ci/config/AgentAttestation", svc.admin);
    assert.equal(live.body.yaml, doc(["runners"]), "the YAML is stored as written");

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec(doc(["runners"]))));
    assert.deepEqual(ops(r), ["same:p1"], "unchanged: no new version");

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec(doc(["runners", "vms"]))));
    assert.ok(r.ok, explain(r));
    assert.deepEqual(ops(r), ["update:p1"]);
    assert.equal(reveal(eng.resource("p1").outputs.version), 2, "an update is a new version");

    const oob = await api(svc.base, "PUT", "/api/v1/clusters/ci/config/AgentAttestation", svc.admin,
        { section: "AgentAttestation", schema: "v1", spec: { policies: [{ name: "other", requiredAttestors: [{ type: "tpm_ek" }] }] } });
    assert.equal(oob.status, 200, JSON.stringify(oob.body));
    r = await eng.refresh();
    assert.deepEqual(ops(r), ["refresh-update:p1"], "refresh sees a change made outside Pulumi");
    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec(doc(["runners", "vms"]))));
    assert.deepEqual(ops(r), ["update:p1"], "up puts the declared document back");
    live = await api(svc.base, "GET", "/api/v1/clusters/ci/config/AgentAttestation", svc.admin);
    assert.equal(live.body.version, 4);

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec("section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: p\n      requiredAttestors:\n        - type: gpu_magic\n")));
    assert.ok(!r.ok, "an unknown attestor type fails the update");
    assert.match(JSON.stringify(r.errors) + (r.stderr || ""), /unknown attestor type/, "with the service's detail naming the path");

    r = await eng.up(PROGRAM, cfg(svc.base, svc.admin, spec(doc(["runners"]), { cluster_id: "Bad_Id" })));
    assert.ok(!r.ok && /cluster_id/.test(JSON.stringify(r.errors) + (r.stderr || "")), "check refuses a malformed cluster id");

    r = await eng.destroy();
    assert.ok(r.ok, explain(r));
    live = await api(svc.base, "GET", "/api/v1/clusters/ci/config/AgentAttestation", svc.admin);
    assert.equal(live.status, 404, "destroy deletes the document");
});
