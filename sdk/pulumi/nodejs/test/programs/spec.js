// A Pulumi program for the provider tests: the resources come from the
// stack config `attestation-sdk:spec` (a JSON list), so one program serves
// every scenario.  References: {"$ref": "<resource>.<output>"}.
"use strict";
const pulumi = require("@pulumi/pulumi");
const attestation = require("../..");

const cfg = new pulumi.Config();
const spec = cfg.requireObject("spec");
const made = {};

function resolve(v) {
    if (v && typeof v === "object" && typeof v.$ref === "string") {
        const [name, prop] = v.$ref.split(".");
        return made[name][prop];
    }
    return v;
}

for (const r of spec) {
    const args = { endpoint: cfg.require(r.endpointKey || "endpoint"), token: cfg.requireSecret(r.tokenKey || "token") };
    for (const [k, v] of Object.entries(r.args || {})) args[k] = resolve(v);
    const opts = {};
    if (r.dependsOn) opts.dependsOn = r.dependsOn.map((n) => made[n]);
    if (r.retainOnDelete) opts.retainOnDelete = true;
    const Kind = r.kind === "approval" ? attestation.MachineApproval
        : r.kind === "policy" ? attestation.AttestationPolicy : attestation.RegisteredMachine;
    made[r.name] = new Kind(r.name, args, opts);
}

for (const [name, res] of Object.entries(made)) {
    exports[name] = res instanceof attestation.MachineApproval
        ? { machine_id: res.machine_id, status: res.status, approved: res.approved, message: res.message }
        : res instanceof attestation.AttestationPolicy
            ? { cluster_id: res.cluster_id, version: res.version, policies: res.policies }
            : { machine_id: res.machine_id, status: res.status, config_token: res.config_token, iso_url: res.iso_url };
}
