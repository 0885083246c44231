// Typed HTTP client for the attestation service's REST API (docs/api.md).
//
// Only Node's own http/https modules: the dynamic providers that use this
// client are serialised by Pulumi and re-loaded in the provider host
// process, where built-in modules are re-required by name.
import * as http from "http";
import * as https from "https";

/** One machine as `GET /api/v1/machines/{id}` answers it (MachineDetail). */
export interface MachineDetail {
    machine_id: string;
    ek_fingerprint: string | null;
    hw_uuid: string | null;
    hw_mac: string | null;
    hw_serial: string | null;
    hw_product: string | null;
    role: string;
    status: string;
    hostname: string | null;
    assigned_ip: string | null;
    registered_at: string | null;
    attested_at: string | null;
    locked_at: string | null;
    revoked_at: string | null;
    approved_at: string | null;
    wipe_pending: boolean;
    [field: string]: unknown;
}

/** Body of `POST /api/v1/register`; `ek_cert_pem` is base64 of the EK material. */
export interface RegisterRequest {
    ek_fingerprint: string;
    ek_cert_pem: string;
    hw_serial?: string;
    hw_product?: string;
    hw_mac?: string;
    desired_role?: string;
}

export interface RegisterResponse {
    machine_id: string;
    role: string;
    status: string;
    iso_url?: string;
    schematic_id?: string;
    installer_image?: string;
    config_token: string | null;
    config_url: string | null;
    ek_fingerprint: string;
    message: string;
}

export interface ApproveRequest {
    role: string;
    hostname?: string;
    assigned_ip?: string;
    reason?: string;
}

/** The 202 answer of an approval under dual control. */
export interface PendingVote {
    machine_id: string;
    status: "pending_second_approval";
    message: string;
    approvals_received: number;
    approvals_required: number;
    expires_at: string;
}

export type ApproveResult = { approved: true; machine: MachineDetail } | { approved: false; vote: PendingVote };

/** One row of `GET /api/v1/machines/{id}/approvals`. */
export interface ApprovalVote {
    id: number;
    machine_id: string;
    operator_cn: string;
    role: string;
    hostname: string | null;
    assigned_ip: string | null;
    reason: string | null;
    created_at: string;
    expires_at: string;
    consumed: boolean;
}

export interface WhoAmI {
    identity: string;
    /** The label this caller's dual-control votes are stored under (operator_cn of /approvals). */
    voter?: string;
    method: string;
    operator: boolean;
    [field: string]: unknown;
}

/**
 * A failed call: an Error named "AttestationError" whose `status` is the HTTP
 * status (0 when the service could not be reached) and `detail` the service's
 * own `detail` text.  (A plain Error with fields rather than a subclass: Pulumi
 * serialises the providers' code, and a serialised `class extends Error`
 * loses its message.)
 */
export interface AttestationError extends Error {
    name: "AttestationError";
    status: number;
    detail: string;
    method: string;
    path: string;
}

export function attestationError(message: string, status: number, detail: string, method: string, path: string): AttestationError {
    const e = new Error(message) as AttestationError;
    e.name = "AttestationError";
    e.status = status;
    e.detail = detail;
    e.method = method;
    e.path = path;
    return e;
}

export function isAttestationError(e: unknown, status?: number): e is AttestationError {
    const a = e as AttestationError;
    return e instanceof Error && a.name === "AttestationError" && (status === undefined || a.status === status);
}

const REASONS: { [status: number]: string } = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 406: "Not Acceptable",
    409: "Conflict", 410: "Gone", 413: "Payload Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
};

const HINTS: { [status: number]: string } = {
    401: " (check the operator token, e.g. `pulumi config set --secret attestation:token ...`)",
    403: " (the token is valid but lacks the operator role)",
};

/** The service's EK field wants base64 of the PEM (or DER) bytes; accept PEM text too. */
export function ekMaterialBase64(pemOrBase64: string): string {
    if (pemOrBase64.includes("-----BEGIN")) {
        return Buffer.from(pemOrBase64, "utf8").toString("base64");
    }
    return pemOrBase64.replace(/\s+/g, "");
}

/** A cluster's AgentAttestation document as stored (docs/attestation-policies.md). */
export interface ClusterConfig {
    cluster_id: string;
    section: string;
    version: number;
    updated_at: string;
    updated_by: string;
    yaml?: string;
    document: { spec: { policies: { name: string }[] } };
}

function clusterConfigPath(clusterId: string): string {
    return `/api/v1/clusters/${encodeURIComponent(clusterId)}/config/AgentAttestation`;
}

export class AttestationClient {
    readonly endpoint: string;
    private readonly token: string | undefined;
    private readonly timeoutMs: number;

    constructor(endpoint: string, token?: string, timeoutMs = 30000) {
        this.endpoint = endpoint.replace(/\/+$/, "");
        this.token = token;
        this.timeoutMs = timeoutMs;
    }

    /** `POST /api/v1/register`; with `asOperator` the token is sent and a new machine is pre-approved. */
    register(req: RegisterRequest, asOperator: boolean): Promise<RegisterResponse> {
        return this.call("POST", "/api/v1/register", req, asOperator);
    }

    getMachine(machineId: string): Promise<MachineDetail> {
        return this.call("GET", `/api/v1/machines/${encodeURIComponent(machineId)}`);
    }

    /** `POST .../approve`: 200 approves; 202 is a recorded dual-control vote. */
    async approve(machineId: string, req: ApproveRequest): Promise<ApproveResult> {
        const r = await this.send("POST", `/api/v1/machines/${encodeURIComponent(machineId)}/approve`, req, true);
        if (r.status === 202) {
            return { approved: false, vote: r.body as PendingVote };
        }
        return { approved: true, machine: r.body as MachineDetail };
    }

    approvals(machineId: string): Promise<ApprovalVote[]> {
        return this.call("GET", `/api/v1/machines/${encodeURIComponent(machineId)}/approvals`);
    }

    revoke(machineId: string, wipe: boolean, reason?: string): Promise<MachineDetail> {
        return this.call("POST", `/api/v1/machines/${encodeURIComponent(machineId)}/revoke`, { wipe, reason });
    }

    lock(machineId: string, reason?: string): Promise<MachineDetail> {
        return this.call("POST", `/api/v1/machines/${encodeURIComponent(machineId)}/lock`, { reason });
    }

    unlock(machineId: string, reason?: string): Promise<MachineDetail> {
        return this.call("POST", `/api/v1/machines/${encodeURIComponent(machineId)}/unlock`, { reason });
    }

    /** `PUT /api/v1/clusters/{id}/config/AgentAttestation` with the YAML document as it is. */
    putAgentAttestation(clusterId: string, yaml: string): Promise<ClusterConfig> {
        return this.call("PUT", clusterConfigPath(clusterId), { yaml });
    }

    getAgentAttestation(clusterId: string): Promise<ClusterConfig> {
        return this.call("GET", clusterConfigPath(clusterId));
    }

    deleteAgentAttestation(clusterId: string): Promise<void> {
        return this.call("DELETE", clusterConfigPath(clusterId));
    }

    whoami(): Promise<WhoAmI> {
        return this.call("GET", "/api/v1/auth/whoami");
    }

    private async call<T>(method: string, path: string, body?: object, auth = true): Promise<T> {
        return (await this.send(method, path, body, auth)).body as T;
    }

    /** One request; any status other than 200/202 becomes an AttestationError with the service's detail. */
    private send(method: string, path: string, body: object | undefined, auth: boolean): Promise<{ status: number; body: unknown }> {
        let url: URL;
        try {
            url = new URL(this.endpoint + path);
        } catch (e) {
            return Promise.reject(attestationError(
                `attestation service: endpoint ${JSON.stringify(this.endpoint)} is not a URL`, 0, String(e), method, path));
        }
        // A body {yaml: "..."} goes out as the YAML itself (the policy documents).
        const yaml = body !== undefined && typeof (body as { yaml?: unknown }).yaml === "string" &&
            Object.keys(body).length === 1 ? (body as { yaml: string }).yaml : undefined;
        const payload = body === undefined ? undefined
            : Buffer.from(yaml ?? JSON.stringify(dropUndefined(body)), "utf8");
        const headers: { [h: string]: string } = { Accept: "application/json" };
        if (payload) {
            headers["Content-Type"] = yaml !== undefined ? "application/yaml" : "application/json";
            headers["Content-Length"] = String(payload.length);
        }
        if (auth && this.token) {
            headers["Authorization"] = `Bearer ${this.token}`;
        }
        const mod = url.protocol === "https:" ? https : http;
        return new Promise((resolve, reject) => {
            const req = mod.request(url, { method, headers, timeout: this.timeoutMs }, (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("end", () => {
                    const text = Buffer.concat(chunks).toString("utf8");
                    const status = res.statusCode || 0;
                    let parsed: unknown = undefined;
                    try {
                        parsed = text ? JSON.parse(text) : undefined;
                    } catch {
                        parsed = undefined;
                    }
                    if (status === 200 || status === 202) {
                        resolve({ status, body: parsed });
                        return;
                    }
                    const detail = parsed && typeof (parsed as { detail?: unknown }).detail === "string"
                        ? (parsed as { detail: string }).detail : text.trim().slice(0, 500);
                    reject(attestationError(
                        `attestation service: ${method} ${path} answered ${status} ${REASONS[status] || ""}: ${detail}${HINTS[status] || ""}`,
                        status, detail, method, path));
                });
                res.on("error", (e: Error) => reject(unreachable(this.endpoint, method, path, e)));
            });
            req.on("timeout", () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
            req.on("error", (e: Error) => reject(unreachable(this.endpoint, method, path, e)));
            req.end(payload);
        });
    }
}

function unreachable(endpoint: string, method: string, path: string, e: Error): AttestationError {
    const code = (e as { code?: string }).code;
    const why = code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
    return attestationError(`attestation service at ${endpoint} is unreachable (${why}) during ${method} ${path}`,
        0, why, method, path);
}

function dropUndefined(o: object): object {
    const out: { [k: string]: unknown } = {};
    for (const [k, v] of Object.entries(o)) {
        if (v !== undefined && v !== null) {
            out[k] = v;
        }
    }
    return out;
}
