// MachineApproval: an operator's approval of a registered machine.
//   create  -> POST /api/v1/machines/{id}/approve (202 under dual control: waiting)
//   read    -> GET  /api/v1/machines/{id} and .../approvals
//   update  -> approve again (new role/hostname/IP, or the next dual-control vote)
//   delete  -> POST /api/v1/machines/{id}/revoke (unless keep_on_delete)
import * as pulumi from "@pulumi/pulumi";
import { AttestationClient, ApprovalVote, isAttestationError, MachineDetail, PendingVote } from "./client";
import {
    changedKeys, checkConnection, checkRole, clean, clientFor, ConnectionInputs, DRIFT_STATES, Failure, isIpInput,
    known, normalizeIp, revokeOnDelete,
} from "./common";
import { NodeRole, PENDING_SECOND_APPROVAL } from "./enums";

export interface MachineApprovalArgs {
    endpoint: pulumi.Input<string>;
    token: pulumi.Input<string>;
    /** `RegisteredMachine.machine_id`. */
    machine_id: pulumi.Input<string>;
    role: pulumi.Input<NodeRole | string>;
    /** Host name to assign (RFC 1123). */
    hostname?: pulumi.Input<string>;
    /** Static address, with or without prefix (stored as CIDR). */
    assigned_ip?: pulumi.Input<string>;
    /** Audit reason of the approval. */
    reason?: pulumi.Input<string>;
    /** If true, `pulumi destroy` does not revoke the machine. */
    keep_on_delete?: pulumi.Input<boolean>;
    wipe_on_delete?: pulumi.Input<boolean>;
    revoke_reason?: pulumi.Input<string>;
}

interface ApprovalInputs extends ConnectionInputs {
    machine_id: string;
    role: string;
    hostname?: string;
    assigned_ip?: string;
    reason?: string;
}

interface ApprovalOutputs extends ApprovalInputs {
    /** Machine state, or `pending_second_approval` while votes are missing. */
    status: string;
    approved: boolean;
    approvals_received: number | null;
    approvals_required: number | null;
    approval_expires_at: string | null;
    message: string;
    approved_role: string | null;
    approved_hostname: string | null;
    approved_ip: string | null;
}

const DESIRED = ["role", "hostname", "assigned_ip", "reason"];
const SETTINGS = ["endpoint", "token", "keep_on_delete", "wipe_on_delete", "revoke_reason"];

function waitingMessage(missing: number, received: number, required: number | null, expires: string | null): string {
    const s = missing === 1 ? "" : "s";
    return `waiting for ${missing} more approval${s} from other operators (dual control: ${received}` +
        `${required ? ` of ${required}` : ""} received${expires ? `; votes expire at ${expires}Z` : ""})`;
}

function approvedOutputs(p: ApprovalInputs, m: MachineDetail): ApprovalOutputs {
    return clean({
        ...p,
        status: m.status,
        approved: true,
        approvals_received: null,
        approvals_required: null,
        approval_expires_at: null,
        message: `approved: role=${m.role} hostname=${m.hostname ?? "none"} assigned_ip=${m.assigned_ip ?? "none"}`,
        approved_role: m.role,
        approved_hostname: m.hostname,
        approved_ip: m.assigned_ip,
    });
}

function waitingOutputs(p: ApprovalInputs, v: PendingVote): ApprovalOutputs {
    return clean({
        ...p,
        status: PENDING_SECOND_APPROVAL,
        approved: false,
        approvals_received: v.approvals_received,
        approvals_required: v.approvals_required,
        approval_expires_at: v.expires_at,
        message: waitingMessage(v.approvals_required - v.approvals_received, v.approvals_received,
            v.approvals_required, v.expires_at),
        approved_role: null,
        approved_hostname: null,
        approved_ip: null,
    });
}

function openVotes(votes: ApprovalVote[]): ApprovalVote[] {
    const now = Date.now();
    return votes.filter((v) => !v.consumed && Date.parse(v.expires_at + "Z") >= now);
}

/** Waiting state from the open votes (when the 202 answer is not at hand). */
function pendingFromVotes(p: ApprovalInputs, open: ApprovalVote[], required: number | null): ApprovalOutputs {
    const expires = open.map((v) => v.expires_at).sort()[0];
    const req = required ?? open.length + 1;
    return waitingOutputs(p, {
        machine_id: p.machine_id, status: PENDING_SECOND_APPROVAL, message: "",
        approvals_received: open.length, approvals_required: req, expires_at: expires,
    });
}

/**
 * Approve, or cast this operator's dual-control vote — but never a second
 * vote by the same operator: that is reported as still waiting.
 */
async function castApproval(client: AttestationClient, p: ApprovalInputs, required: number | null): Promise<ApprovalOutputs> {
    const open = openVotes(await client.approvals(p.machine_id));
    if (open.length > 0) {
        const me = await client.whoami();
        if (open.some((v) => v.operator_cn === (me.voter ?? me.identity))) {
            return pendingFromVotes(p, open, required);
        }
    }
    const r = await client.approve(p.machine_id, {
        role: p.role, hostname: p.hostname, assigned_ip: p.assigned_ip, reason: p.reason,
    });
    return r.approved ? approvedOutputs(p, r.machine) : waitingOutputs(p, r.vote);
}

/**
 * Whether `up` must (re-)approve: not approved yet (waiting for votes), the
 * desired role/hostname/address changed, or the service holds other values
 * than the ones declared (changed outside Pulumi).
 */
function needsApproval(olds: any, news: ApprovalInputs): boolean {
    return olds.approved !== true || changedKeys(olds, news, DESIRED).length > 0 ||
        olds.approved_role !== news.role ||
        (news.hostname !== undefined && olds.approved_hostname !== news.hostname) ||
        (news.assigned_ip !== undefined && olds.approved_ip !== normalizeIp(news.assigned_ip));
}

export const approvalProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: any, news: any): Promise<pulumi.dynamic.CheckResult> {
        const failures: Failure[] = [];
        const inputs = { keep_on_delete: false, wipe_on_delete: false, ...news };
        checkConnection(inputs, failures);
        if (inputs.machine_id === undefined || inputs.machine_id === null || inputs.machine_id === "") {
            failures.push({ property: "machine_id", reason: "is required (RegisteredMachine.machine_id)" });
        }
        checkRole(inputs, "role", true, failures);
        if (known(inputs.hostname) && !/^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(String(inputs.hostname))) {
            failures.push({ property: "hostname", reason: "must be an RFC 1123 host name" });
        }
        if (known(inputs.assigned_ip) && !isIpInput(String(inputs.assigned_ip))) {
            failures.push({ property: "assigned_ip", reason: "expected an IPv4 or IPv6 address with optional /prefix" });
        }
        return { inputs: clean(inputs), failures };
    },

    async create(inputs: ApprovalInputs): Promise<pulumi.dynamic.CreateResult> {
        const outs = await castApproval(clientFor(inputs), inputs, null);
        return { id: inputs.machine_id, outs };
    },

    async read(id: string, props: any): Promise<pulumi.dynamic.ReadResult> {
        const client = clientFor(props);
        let m: MachineDetail;
        try {
            m = await client.getMachine(props.machine_id || id);
        } catch (e) {
            if (isAttestationError(e, 404)) {
                return { id: "", props: {} };
            }
            throw e;
        }
        if (DRIFT_STATES.includes(m.status)) {
            return { id, props: { ...props, status: m.status, message: `machine is ${m.status} (changed outside Pulumi)` } };
        }
        const open = openVotes(await client.approvals(m.machine_id));
        if (open.length > 0) {
            return { id, props: pendingFromVotes(props, open, props.approvals_required ?? null) };
        }
        if (m.approved_at) {
            return { id, props: approvedOutputs(props, m) };
        }
        return {
            id, props: clean({
                ...props, status: m.status, approved: false,
                message: "not approved: no open votes (they expired, or were never cast)",
            }),
        };
    },

    async diff(_id: string, olds: any, news: any): Promise<pulumi.dynamic.DiffResult> {
        const replaces: string[] = [];
        if (olds.machine_id !== news.machine_id) {
            replaces.push("machine_id");
        }
        if (DRIFT_STATES.includes(olds.status)) {
            replaces.push("status");
        }
        return {
            changes: replaces.length > 0 || changedKeys(olds, news, SETTINGS).length > 0 || needsApproval(olds, news),
            replaces,
            deleteBeforeReplace: false,
        };
    },

    async update(id: string, olds: any, news: ApprovalInputs): Promise<pulumi.dynamic.UpdateResult> {
        const client = clientFor(news);
        if (needsApproval(olds, news)) {
            return { outs: await castApproval(client, news, olds.approvals_required ?? null) };
        }
        const m = await client.getMachine(id);
        return { outs: approvedOutputs(news, m) };
    },

    async delete(id: string, props: any): Promise<void> {
        await revokeOnDelete(props, props.machine_id || id);
    },
};

/**
 * An approval of a registered machine with a role, host name and address.
 * Under dual control the first `up` records this operator's vote and the
 * outputs say how many approvals are still missing; another operator's `up`
 * (their own token) completes it.
 */
export class MachineApproval extends pulumi.dynamic.Resource {
    public readonly machine_id!: pulumi.Output<string>;
    public readonly status!: pulumi.Output<string>;
    public readonly approved!: pulumi.Output<boolean>;
    public readonly approvals_received!: pulumi.Output<number | null>;
    public readonly approvals_required!: pulumi.Output<number | null>;
    public readonly approval_expires_at!: pulumi.Output<string | null>;
    public readonly message!: pulumi.Output<string>;
    public readonly approved_role!: pulumi.Output<string | null>;
    public readonly approved_hostname!: pulumi.Output<string | null>;
    public readonly approved_ip!: pulumi.Output<string | null>;

    constructor(name: string, args: MachineApprovalArgs, opts?: pulumi.CustomResourceOptions) {
        super(approvalProvider, name, {
            ...args,
            token: pulumi.secret(args.token),
            status: undefined,
            approved: undefined,
            approvals_received: undefined,
            approvals_required: undefined,
            approval_expires_at: undefined,
            message: undefined,
            approved_role: undefined,
            approved_hostname: undefined,
            approved_ip: undefined,
        }, pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token"] }), "attestation", "MachineApproval");
    }
}
