// What both dynamic providers share: input checks, the client they build
// from their inputs, and the revoke-on-destroy rule.
import * as net from "net";
import { AttestationClient, isAttestationError } from "./client";
import { NODE_ROLES } from "./enums";

/** The value the engine sends for inputs not known yet (during a preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** States that mean "changed outside Pulumi": `up` proposes a replacement. */
export const DRIFT_STATES = ["locked", "revoked"];

export interface Failure {
    property: string;
    reason: string;
}

/** Inputs every resource of this provider takes. */
export interface ConnectionInputs {
    endpoint: string;
    token: string;
    keep_on_delete?: boolean;
    wipe_on_delete?: boolean;
    revoke_reason?: string;
}

export function known(v: unknown): boolean {
    return v !== undefined && v !== null && v !== UNKNOWN;
}

export function clientFor(props: ConnectionInputs): AttestationClient {
    return new AttestationClient(props.endpoint, props.token);
}

/** Struct values cannot be `undefined`: drop such keys. */
export function clean<T extends object>(o: T): T {
    const out: { [k: string]: unknown } = {};
    for (const [k, v] of Object.entries(o)) {
        if (v !== undefined) {
            out[k] = v;
        }
    }
    return out as T;
}

export function checkConnection(news: { [k: string]: unknown }, failures: Failure[]): void {
    const ep = news.endpoint;
    if (known(ep) && (typeof ep !== "string" || !/^https?:\/\/[^/\s]+/.test(ep))) {
        failures.push({ property: "endpoint", reason: "must be the service's base URL, e.g. http://localhost:8080" });
    } else if (ep === undefined || ep === null || ep === "") {
        failures.push({ property: "endpoint", reason: "is required" });
    }
    if (news.token === undefined || news.token === null || news.token === "") {
        failures.push({ property: "token", reason: "is required (an operator bearer token)" });
    }
    for (const k of ["keep_on_delete", "wipe_on_delete"]) {
        if (known(news[k]) && typeof news[k] !== "boolean") {
            failures.push({ property: k, reason: "must be true or false" });
        }
    }
}

export function checkRole(news: { [k: string]: unknown }, key: string, required: boolean, failures: Failure[]): void {
    const v = news[key];
    if (v === undefined || v === null) {
        if (required) {
            failures.push({ property: key, reason: `is required (one of ${NODE_ROLES.join(", ")})` });
        }
    } else if (known(v) && !NODE_ROLES.includes(v as string)) {
        failures.push({ property: key, reason: `must be one of ${NODE_ROLES.join(", ")}` });
    }
}

/** `10.0.1.10` and `10.0.1.10/32` are the same assignment (the service stores CIDR form). */
export function normalizeIp(ip: unknown): string | null {
    if (typeof ip !== "string" || ip === "") {
        return null;
    }
    const [addr, prefix] = ip.split("/");
    const fam = net.isIP(addr);
    if (prefix !== undefined) {
        return `${addr.toLowerCase()}/${prefix}`;
    }
    return `${addr.toLowerCase()}/${fam === 6 ? 128 : 32}`;
}

export function isIpInput(ip: string): boolean {
    const [addr, prefix] = ip.split("/");
    return net.isIP(addr) !== 0 && (prefix === undefined || /^\d{1,3}$/.test(prefix));
}

/** Which of `keys` differ between the old outputs and the new inputs. */
export function changedKeys(olds: object, news: object, keys: string[]): string[] {
    const o = olds as { [k: string]: unknown }, n = news as { [k: string]: unknown };
    return keys.filter((k) => JSON.stringify(o[k] ?? null) !== JSON.stringify(n[k] ?? null));
}

/**
 * Destroy: revoke the machine with a reason (a wipe only when
 * `wipe_on_delete` asks for it), unless `keep_on_delete`.  A machine that is
 * already revoked, or that the service does not know, needs nothing.
 */
export async function revokeOnDelete(props: ConnectionInputs, machineId: string): Promise<void> {
    if (props.keep_on_delete === true || !machineId) {
        return;
    }
    const client = clientFor(props);
    try {
        const m = await client.getMachine(machineId);
        if (m.status === "revoked") {
            return;
        }
        await client.revoke(machineId, props.wipe_on_delete === true, props.revoke_reason || "pulumi destroy");
    } catch (e) {
        if (isAttestationError(e, 404)) {
            return;
        }
        throw e;
    }
}
