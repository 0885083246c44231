// Two machines (one controlplane, one worker) registered and approved
// through the attestation service, plus a per-machine enrollment token
// (RandomPassword) composed with the service's outputs into an encrypted
// bootstrap bundle.
//
//   pulumi config set attestation:endpoint http://localhost:8080
//   pulumi config set --secret attestation:token <ITL_ADMIN_TOKEN or an OIDC access token>
//   pulumi config set attestation:ekDir ./ek        # <name>.pem EK certificates
//   pulumi up
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { MachineApproval, NodeRole, RegisteredMachine } from "pulumi-itl-attestation";

const cfg = new pulumi.Config("attestation");
const endpoint = cfg.require("endpoint");
const token = cfg.requireSecret("token");
const ekDir = cfg.get("ekDir") || "./ek";

interface Node {
    name: string;
    role: NodeRole;
    hwSerial: string;
    hwMac: string;
    hostname: string;
    ip: string;
}

const nodes: Node[] = [
    { name: "cp-node-01", role: NodeRole.controlplane, hwSerial: "SN-CP-001", hwMac: "52:54:00:00:01:01",
        hostname: "cp-node-01.cluster.local", ip: "10.0.1.10" },
    { name: "worker-node-01", role: NodeRole.worker_app, hwSerial: "SN-WK-001", hwMac: "52:54:00:00:02:01",
        hostname: "worker-node-01.cluster.local", ip: "10.0.1.20" },
];

/** SHA-384 over the EK's DER SubjectPublicKeyInfo: the service's canonical fingerprint. */
function ekFingerprint(pem: string): string {
    const spki = new crypto.X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
    return crypto.createHash("sha384").update(spki).digest("hex");
}

export const machines: { [name: string]: pulumi.Output<unknown> } = {};
export const bootstrapBundles: { [name: string]: pulumi.Output<string> } = {};

for (const node of nodes) {
    const ekPem = fs.readFileSync(path.join(ekDir, `${node.name}.pem`), "utf8");

    const machine = new RegisteredMachine(node.name, {
        endpoint,
        token,
        ek_fingerprint: ekFingerprint(ekPem),
        ek_cert_pem: ekPem,
        hw_serial: node.hwSerial,
        hw_mac: node.hwMac,
        desired_role: node.role,
    });

    const approval = new MachineApproval(`${node.name}-approval`, {
        endpoint,
        token,
        machine_id: machine.machine_id,
        role: node.role,
        hostname: node.hostname,
        assigned_ip: node.ip,
        reason: "pulumi-demo",
    }, { dependsOn: [machine] });

    const enrollmentToken = new random.RandomPassword(`${node.name}-enrollment-token`, {
        length: 44,
        special: false,
    }, { additionalSecretOutputs: ["result"] });

    machines[node.name] = pulumi.all([machine.machine_id, machine.status, machine.iso_url, approval.status, approval.message])
        .apply(([id, status, iso, approvalStatus, message]) => ({ machine_id: id, status, iso_url: iso, approval: approvalStatus, message }));

    bootstrapBundles[node.name] = pulumi.secret(
        pulumi.all({
            machine_id: machine.machine_id,
            config_token: machine.config_token,
            config_url: machine.config_url,
            enrollment_token: enrollmentToken.result,
        }).apply((v) => JSON.stringify(v, null, 2)),
    );
}
