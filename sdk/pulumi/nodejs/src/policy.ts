// AttestationPolicy: a cluster's agent attestation policies (seed 004's
// `spirl_cluster_config` with an AgentAttestation section).
//   create/update -> PUT    /api/v1/clusters/{id}/config/AgentAttestation (a new version)
//   read          -> GET    the same (drift: the stored YAML differs)
//   delete        -> DELETE the same (unless keep_on_delete)
import * as pulumi from "@pulumi/pulumi";
import { ClusterConfig, isAttestationError } from "./client";
import { changedKeys, checkConnection, clean, clientFor, ConnectionInputs, Failure, known } from "./common";

export interface AttestationPolicyArgs {
    endpoint: pulumi.Input<string>;
    token: pulumi.Input<string>;
    /** `default` or a cluster id (1-63 of [a-z0-9-]). */
    cluster_id: pulumi.Input<string>;
    /** The AgentAttestation document, YAML (section, schema, spec.policies). */
    document: pulumi.Input<string>;
    /** If true, `pulumi destroy` leaves the document in place. */
    keep_on_delete?: pulumi.Input<boolean>;
}

interface PolicyInputs extends ConnectionInputs {
    cluster_id: string;
    document: string;
}

interface PolicyOutputs extends PolicyInputs {
    version: number;
    policies: string[];
    updated_at: string;
    updated_by: string;
}

function outputs(p: PolicyInputs, c: ClusterConfig): PolicyOutputs {
    return clean({
        ...p,
        version: c.version,
        policies: (c.document?.spec?.policies ?? []).map((x) => x.name),
        updated_at: c.updated_at,
        updated_by: c.updated_by,
    });
}

export const policyProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: any, news: any): Promise<pulumi.dynamic.CheckResult> {
        const failures: Failure[] = [];
        const inputs = { keep_on_delete: false, ...news };
        checkConnection(inputs, failures);
        const id = inputs.cluster_id;
        if (id === undefined || id === null || id === "") {
            failures.push({ property: "cluster_id", reason: "is required (`default` or a cluster id)" });
        } else if (known(id) && (typeof id !== "string" || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(id))) {
            failures.push({ property: "cluster_id", reason: "must be 1-63 of [a-z0-9-], not starting with '-'" });
        }
        const doc = inputs.document;
        if (doc === undefined || doc === null || doc === "") {
            failures.push({ property: "document", reason: "is required (the AgentAttestation YAML)" });
        } else if (known(doc) && (typeof doc !== "string" || Buffer.byteLength(doc, "utf8") > 65536)) {
            failures.push({ property: "document", reason: "must be YAML text of at most 65536 bytes" });
        }
        return { inputs: clean(inputs), failures };
    },

    async create(inputs: PolicyInputs): Promise<pulumi.dynamic.CreateResult> {
        const c = await clientFor(inputs).putAgentAttestation(inputs.cluster_id, inputs.document);
        return { id: inputs.cluster_id, outs: outputs(inputs, c) };
    },

    async read(id: string, props: any): Promise<pulumi.dynamic.ReadResult> {
        try {
            const c = await clientFor(props).getAgentAttestation(id);
            // The stored YAML is what was sent: a difference was made outside Pulumi.
            return { id, props: outputs({ ...props, document: c.yaml ?? props.document }, c) };
        } catch (e) {
            if (isAttestationError(e, 404)) {
                return { id: "", props: {} }; // deleted outside Pulumi: up re-creates it
            }
            throw e;
        }
    },

    async diff(_id: string, olds: any, news: any): Promise<pulumi.dynamic.DiffResult> {
        const replaces = olds.cluster_id !== news.cluster_id ? ["cluster_id"] : [];
        const changed = changedKeys(olds, news, ["endpoint", "token", "document", "keep_on_delete"]);
        return { changes: replaces.length > 0 || changed.length > 0, replaces, deleteBeforeReplace: false };
    },

    async update(_id: string, olds: any, news: PolicyInputs): Promise<pulumi.dynamic.UpdateResult> {
        if (olds.document === news.document) {
            return { outs: { ...olds, ...news } };
        }
        const c = await clientFor(news).putAgentAttestation(news.cluster_id, news.document);
        return { outs: outputs(news, c) };
    },

    async delete(id: string, props: any): Promise<void> {
        if (props.keep_on_delete) {
            return;
        }
        try {
            await clientFor(props).deleteAgentAttestation(id);
        } catch (e) {
            if (!isAttestationError(e, 404)) {
                throw e;
            }
        }
    },
};

/** A cluster's agent attestation policies, applied without restarts (docs/attestation-policies.md). */
export class AttestationPolicy extends pulumi.dynamic.Resource {
    public readonly cluster_id!: pulumi.Output<string>;
    public readonly version!: pulumi.Output<number>;
    public readonly policies!: pulumi.Output<string[]>;
    public readonly updated_at!: pulumi.Output<string>;
    public readonly updated_by!: pulumi.Output<string>;

    constructor(name: string, args: AttestationPolicyArgs, opts?: pulumi.CustomResourceOptions) {
        super(policyProvider, name, {
            ...args,
            token: pulumi.secret(args.token),
            version: undefined,
            policies: undefined,
            updated_at: undefined,
            updated_by: undefined,
        }, pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token"] }), "attestation", "AttestationPolicy");
    }
}
