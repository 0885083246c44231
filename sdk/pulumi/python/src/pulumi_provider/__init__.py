"""pulumi-itl-attestation: machines of the attestation service as Pulumi resources."""
from ._client import AttestationClient, AttestationError, ApproveResult, ek_material_base64
from .enums import MachineStatus, NodeRole, PENDING_SECOND_APPROVAL

try:  # the resources need the Pulumi SDK; the client does not
    from .provider import MachineApprovalProvider, RegisteredMachineProvider
    from .resources import MachineApproval, RegisteredMachine
except ImportError:  # pragma: no cover - pulumi not installed
    pass

__all__ = ["AttestationClient", "AttestationError", "ApproveResult", "ek_material_base64", "MachineStatus",
           "NodeRole", "PENDING_SECOND_APPROVAL", "RegisteredMachine", "MachineApproval",
           "RegisteredMachineProvider", "MachineApprovalProvider"]
