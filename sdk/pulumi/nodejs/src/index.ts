// pulumi-itl-attestation: machines of the attestation service as Pulumi resources.
export { AttestationClient, attestationError, ekMaterialBase64, isAttestationError } from "./client";
export type {
    ApprovalVote, ApproveRequest, AttestationError, ApproveResult, MachineDetail, PendingVote, RegisterRequest, RegisterResponse, WhoAmI,
} from "./client";
export { MachineStatus, NodeRole, PENDING_SECOND_APPROVAL } from "./enums";
export { RegisteredMachine, RegisteredMachineArgs, machineProvider } from "./machine";
export { MachineApproval, MachineApprovalArgs, approvalProvider } from "./approval";
export { AttestationPolicy, AttestationPolicyArgs, policyProvider } from "./policy";
export type { ClusterConfig } from "./client";
