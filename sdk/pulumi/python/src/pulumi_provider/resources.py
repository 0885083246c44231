"""RegisteredMachine and MachineApproval as pulumi.dynamic resources."""
from __future__ import annotations

from typing import Optional, Union

import pulumi
from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import Resource

from .enums import NodeRole
from .provider import MachineApprovalProvider, RegisteredMachineProvider

_MACHINE_OUTPUTS = ["machine_id", "status", "role", "config_url", "config_token", "iso_url", "schematic_id",
                    "installer_image"]
_APPROVAL_OUTPUTS = ["status", "approved", "approvals_received", "approvals_required", "approval_expires_at",
                     "message", "approved_role", "approved_hostname", "approved_ip"]


def _opts(opts: Optional[ResourceOptions], secrets: list) -> ResourceOptions:
    return ResourceOptions.merge(opts, ResourceOptions(additional_secret_outputs=secrets))


class RegisteredMachine(Resource):
    """POST /api/v1/register on create, POST /api/v1/machines/{id}/revoke on destroy.
    config_url / config_token stay empty: the service issues config tokens only to
    the machine itself, after it attested."""
    machine_id: Output[str]
    status: Output[str]
    role: Output[str]
    config_url: Output[Optional[str]]
    config_token: Output[Optional[str]]
    iso_url: Output[Optional[str]]

    def __init__(self, resource_name: str, *, endpoint: Input[str], token: Input[str], ek_fingerprint: Input[str],
                 ek_cert_pem: Input[str], hw_serial: Optional[Input[str]] = None,
                 hw_product: Optional[Input[str]] = None, hw_mac: Optional[Input[str]] = None,
                 desired_role: Optional[Input[Union[NodeRole, str]]] = None, pre_approve: Optional[Input[bool]] = None,
                 keep_on_delete: Optional[Input[bool]] = None, wipe_on_delete: Optional[Input[bool]] = None,
                 revoke_reason: Optional[Input[str]] = None, opts: Optional[ResourceOptions] = None):
        props = {
            "endpoint": endpoint, "token": pulumi.Output.secret(token), "ek_fingerprint": ek_fingerprint,
            "ek_cert_pem": pulumi.Output.secret(ek_cert_pem), "hw_serial": hw_serial, "hw_product": hw_product,
            "hw_mac": hw_mac, "desired_role": desired_role.value if isinstance(desired_role, NodeRole) else desired_role,
            "pre_approve": pre_approve, "keep_on_delete": keep_on_delete, "wipe_on_delete": wipe_on_delete,
            "revoke_reason": revoke_reason,
        }
        props.update({k: None for k in _MACHINE_OUTPUTS})
        super().__init__(RegisteredMachineProvider(), resource_name, props,
                         _opts(opts, ["token", "ek_cert_pem", "config_token"]))


class MachineApproval(Resource):
    """POST /api/v1/machines/{id}/approve on create; under dual control the outputs
    say how many approvals are still missing.  keep_on_delete skips the revocation."""
    machine_id: Output[str]
    status: Output[str]
    approved: Output[bool]
    message: Output[str]

    def __init__(self, resource_name: str, *, endpoint: Input[str], token: Input[str], machine_id: Input[str],
                 role: Input[Union[NodeRole, str]], hostname: Optional[Input[str]] = None,
                 assigned_ip: Optional[Input[str]] = None, reason: Optional[Input[str]] = None,
                 keep_on_delete: Optional[Input[bool]] = None, wipe_on_delete: Optional[Input[bool]] = None,
                 revoke_reason: Optional[Input[str]] = None, opts: Optional[ResourceOptions] = None):
        props = {
            "endpoint": endpoint, "token": pulumi.Output.secret(token), "machine_id": machine_id,
            "role": role.value if isinstance(role, NodeRole) else role, "hostname": hostname,
            "assigned_ip": assigned_ip, "reason": reason, "keep_on_delete": keep_on_delete,
            "wipe_on_delete": wipe_on_delete, "revoke_reason": revoke_reason,
        }
        props.update({k: None for k in _APPROVAL_OUTPUTS})
        super().__init__(MachineApprovalProvider(), resource_name, props, _opts(opts, ["token"]))
