"""NodeRole and MachineStatus (docs/lifecycle.md)."""
from enum import Enum


class NodeRole(str, Enum):
    controlplane = "controlplane"
    worker_infra = "worker-infra"
    worker_app = "worker-app"


class MachineStatus(str, Enum):
    pending_approval = "pending_approval"
    registered = "registered"
    attested = "attested"
    locked = "locked"
    revoked = "revoked"


PENDING_SECOND_APPROVAL = "pending_second_approval"
NODE_ROLES = [r.value for r in NodeRole]
