// RegisteredMachine: a TPM-backed machine known to the attestation service.
//   create  -> POST /api/v1/register (with the operator token: pre-approved)
//   read    -> GET  /api/v1/machines/{id}        (pulumi refresh: drift)
//   update  -> POST /api/v1/register again (hardware details) / GET
//   delete  -> POST /api/v1/machines/{id}/revoke (unless keep_on_delete)
import * as pulumi from "@pulumi/pulumi";
import { ekMaterialBase64, isAttestationError, MachineDetail } from "./client";
import {
    changedKeys, checkConnection, checkRole, clean, clientFor, ConnectionInputs, DRIFT_STATES, Failure, known,
    revokeOnDelete,
} from "./common";
import { MachineStatus, NodeRole } from "./enums";

export interface RegisteredMachineArgs {
    /** Base URL of the attestation service. */
    endpoint: pulumi.Input<string>;
    /** Operator bearer token (always stored as a secret). */
    token: pulumi.Input<string>;
    /** Hex fingerprint of the TPM EK (SHA-384 of the SubjectPublicKeyInfo; 64 or 96 hex). */
    ek_fingerprint: pulumi.Input<string>;
    /** PEM text (or base64 of the PEM/DER bytes) of the EK certificate (always stored as a secret). */
    ek_cert_pem: pulumi.Input<string>;
    hw_serial?: pulumi.Input<string>;
    hw_product?: pulumi.Input<string>;
    hw_mac?: pulumi.Input<string>;
    /** Role asked for at registration (default worker-app). */
    desired_role?: pulumi.Input<NodeRole | string>;
    /** Register with the operator token, so the new machine is `registered` at once (default true). */
    pre_approve?: pulumi.Input<boolean>;
    /** Do not revoke the machine on destroy. */
    keep_on_delete?: pulumi.Input<boolean>;
    /** Revoke with remote wipe on destroy (default false). */
    wipe_on_delete?: pulumi.Input<boolean>;
    /** Audit reason of the revocation on destroy (default "pulumi destroy"). */
    revoke_reason?: pulumi.Input<string>;
}

interface MachineInputs extends ConnectionInputs {
    ek_fingerprint: string;
    ek_cert_pem: string;
    hw_serial?: string;
    hw_product?: string;
    hw_mac?: string;
    desired_role: string;
    pre_approve: boolean;
}

interface MachineOutputs extends MachineInputs {
    machine_id: string;
    status: string;
    role: string;
    config_url: string | null;
    config_token: string | null;
    iso_url: string | null;
    schematic_id: string | null;
    installer_image: string | null;
}

/** Inputs whose change is applied in place. */
const UPDATABLE = ["endpoint", "token", "hw_serial", "hw_product", "hw_mac", "desired_role", "pre_approve",
    "keep_on_delete", "wipe_on_delete", "revoke_reason"];
const HARDWARE = ["hw_serial", "hw_product", "hw_mac"];

function normalizeMac(mac: unknown): unknown {
    return typeof mac === "string" && mac !== "" && known(mac) ? mac.toLowerCase().replace(/-/g, ":") : mac;
}

function pemKey(pem: unknown): string {
    return typeof pem === "string" ? ekMaterialBase64(pem) : "";
}

/** The registration body for these inputs. */
function registerBody(p: MachineInputs) {
    return {
        ek_fingerprint: p.ek_fingerprint,
        ek_cert_pem: ekMaterialBase64(p.ek_cert_pem),
        hw_serial: p.hw_serial,
        hw_product: p.hw_product,
        hw_mac: p.hw_mac,
        desired_role: p.desired_role,
    };
}

/** What the live machine says, merged over the stored outputs. */
function liveOutputs(base: MachineInputs & Partial<MachineOutputs>, m: MachineDetail): MachineOutputs {
    return clean({
        ...base,
        machine_id: m.machine_id,
        status: m.status,
        role: m.role,
        config_url: base.config_url ?? null,
        config_token: base.config_token ?? null,
        iso_url: base.iso_url ?? null,
        schematic_id: base.schematic_id ?? null,
        installer_image: base.installer_image ?? null,
    });
}

export const machineProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: any, news: any): Promise<pulumi.dynamic.CheckResult> {
        const failures: Failure[] = [];
        const inputs = {
            desired_role: NodeRole.worker_app as string,
            pre_approve: true,
            keep_on_delete: false,
            wipe_on_delete: false,
            ...news,
        };
        checkConnection(inputs, failures);
        const fp = inputs.ek_fingerprint;
        if (fp === undefined || fp === null || fp === "") {
            failures.push({ property: "ek_fingerprint", reason: "is required" });
        } else if (known(fp)) {
            if (typeof fp !== "string" || !/^([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$/.test(fp)) {
                failures.push({ property: "ek_fingerprint", reason: "must be 64 or 96 hex characters (SHA-256/SHA-384)" });
            } else {
                inputs.ek_fingerprint = fp.toLowerCase();
            }
        }
        if (inputs.ek_cert_pem === undefined || inputs.ek_cert_pem === null || inputs.ek_cert_pem === "") {
            failures.push({ property: "ek_cert_pem", reason: "is required (PEM text of the EK certificate)" });
        }
        checkRole(inputs, "desired_role", false, failures);
        if (known(inputs.hw_mac) && !/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(String(inputs.hw_mac))) {
            failures.push({ property: "hw_mac", reason: "expected a MAC address like 52:54:00:12:34:56" });
        }
        inputs.hw_mac = normalizeMac(inputs.hw_mac);
        return { inputs: clean(inputs), failures };
    },

    async create(inputs: MachineInputs): Promise<pulumi.dynamic.CreateResult> {
        const r = await clientFor(inputs).register(registerBody(inputs), inputs.pre_approve !== false);
        const outs: MachineOutputs = clean({
            ...inputs,
            machine_id: r.machine_id,
            status: r.status,
            role: r.role,
            // Config tokens are issued only by /attest, after the TPM proved itself.
            config_url: r.config_url ?? null,
            config_token: r.config_token ?? null,
            iso_url: r.iso_url ?? null,
            schematic_id: r.schematic_id ?? null,
            installer_image: r.installer_image ?? null,
        });
        return { id: r.machine_id, outs };
    },

    async read(id: string, props: any): Promise<pulumi.dynamic.ReadResult> {
        try {
            const m = await clientFor(props).getMachine(id);
            return { id, props: liveOutputs(props, m) };
        } catch (e) {
            if (isAttestationError(e, 404)) {
                return { id: "", props: {} }; // gone: refresh drops it, up re-creates it
            }
            throw e;
        }
    },

    async diff(_id: string, olds: any, news: any): Promise<pulumi.dynamic.DiffResult> {
        const replaces: string[] = [];
        if (String(olds.ek_fingerprint).toLowerCase() !== String(news.ek_fingerprint).toLowerCase()) {
            replaces.push("ek_fingerprint");
        }
        if (pemKey(olds.ek_cert_pem) !== pemKey(news.ek_cert_pem)) {
            replaces.push("ek_cert_pem");
        }
        if (DRIFT_STATES.includes(olds.status)) {
            replaces.push("status"); // revoked or locked outside Pulumi
        }
        const changed = changedKeys(olds, news, UPDATABLE);
        return {
            changes: replaces.length > 0 || changed.length > 0,
            replaces,
            // Create the replacement first: a refused registration leaves the old record untouched.
            deleteBeforeReplace: false,
        };
    },

    async update(id: string, olds: any, news: MachineInputs): Promise<pulumi.dynamic.UpdateResult> {
        const client = clientFor(news);
        if (changedKeys(olds, news, HARDWARE).length > 0) {
            // A known EK registering again refreshes its hardware details (audited as re_register).
            const r = await client.register(registerBody(news), news.pre_approve !== false);
            if (r.machine_id !== id) {
                throw new Error(`attestation service: re-registration answered machine ${r.machine_id}, expected ${id}`);
            }
        }
        const m = await client.getMachine(id);
        return { outs: liveOutputs({ ...olds, ...news }, m) };
    },

    async delete(id: string, props: any): Promise<void> {
        await revokeOnDelete(props, id);
    },
};

/**
 * A machine registered with the attestation service.  Outputs `config_url` /
 * `config_token` stay empty: the service issues config tokens only to the
 * machine itself, after it attested.
 */
export class RegisteredMachine extends pulumi.dynamic.Resource {
    public readonly machine_id!: pulumi.Output<string>;
    public readonly status!: pulumi.Output<MachineStatus>;
    public readonly role!: pulumi.Output<NodeRole>;
    public readonly config_url!: pulumi.Output<string | null>;
    public readonly config_token!: pulumi.Output<string | null>;
    public readonly iso_url!: pulumi.Output<string | null>;
    public readonly schematic_id!: pulumi.Output<string | null>;
    public readonly installer_image!: pulumi.Output<string | null>;
    public readonly ek_fingerprint!: pulumi.Output<string>;

    constructor(name: string, args: RegisteredMachineArgs, opts?: pulumi.CustomResourceOptions) {
        super(machineProvider, name, {
            ...args,
            token: pulumi.secret(args.token),
            ek_cert_pem: pulumi.secret(args.ek_cert_pem),
            machine_id: undefined,
            status: undefined,
            role: undefined,
            config_url: undefined,
            config_token: undefined,
            iso_url: undefined,
            schematic_id: undefined,
            installer_image: undefined,
        }, pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token", "ek_cert_pem", "config_token"] }),
        "attestation", "RegisteredMachine");
    }
}
