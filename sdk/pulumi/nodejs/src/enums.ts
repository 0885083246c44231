/** A machine's Talos role (the service's `role` / `desired_role`). */
export enum NodeRole {
    controlplane = "controlplane",
    worker_infra = "worker-infra",
    worker_app = "worker-app",
}

/** A machine's lifecycle state (docs/lifecycle.md). */
export enum MachineStatus {
    pending_approval = "pending_approval",
    registered = "registered",
    attested = "attested",
    locked = "locked",
    revoked = "revoked",
}

/** `MachineApproval.status` while a dual-control quorum is not reached. */
export const PENDING_SECOND_APPROVAL = "pending_second_approval";

export const NODE_ROLES: string[] = [NodeRole.controlplane, NodeRole.worker_infra, NodeRole.worker_app];
