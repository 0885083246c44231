"""pulumi.dynamic.ResourceProvider implementations (same rules as the
TypeScript package, sdk/pulumi/README.md):

RegisteredMachine: create = POST /api/v1/register, read = GET machine
(refresh sees a revoke or lock made outside Pulumi), diff replaces on a new
EK or on that drift, update re-registers hardware details, delete revokes
unless keep_on_delete.  MachineApproval: create/update approve (a
dual-control vote is reported as waiting, never cast twice by the same
operator), delete revokes unless keep_on_delete.
"""
from __future__ import annotations

import ipaddress
import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Optional

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from ._client import AttestationClient, AttestationError, ek_material_base64
from .enums import NODE_ROLES, PENDING_SECOND_APPROVAL

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
DRIFT_STATES = ("locked", "revoked")
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")
_FP = re.compile(r"^([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$")
_HOST = re.compile(r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")


def _known(v: Any) -> bool:
    return v is not None and v != UNKNOWN


def _client(p: dict) -> AttestationClient:
    return AttestationClient(p["endpoint"], p.get("token"))


def _changed(olds: dict, news: dict, keys) -> list:
    return [k for k in keys if json.dumps(olds.get(k)) != json.dumps(news.get(k))]


def _check_connection(news: dict, failures: list) -> None:
    ep = news.get("endpoint")
    if ep in (None, ""):
        failures.append(CheckFailure("endpoint", "is required"))
    elif _known(ep) and not re.match(r"^https?://[^/\s]+", str(ep)):
        failures.append(CheckFailure("endpoint", "must be the service's base URL, e.g. http://localhost:8080"))
    if news.get("token") in (None, ""):
        failures.append(CheckFailure("token", "is required (an operator bearer token)"))


def _check_role(news: dict, key: str, required: bool, failures: list) -> None:
    v = news.get(key)
    if v is None:
        if required:
            failures.append(CheckFailure(key, f"is required (one of {', '.join(NODE_ROLES)})"))
    elif _known(v) and v not in NODE_ROLES:
        failures.append(CheckFailure(key, f"must be one of {', '.join(NODE_ROLES)}"))


def normalize_ip(ip: Optional[str]) -> Optional[str]:
    """10.0.1.10 and 10.0.1.10/32 are the same assignment (the service stores CIDR form)."""
    if not ip:
        return None
    addr, _, prefix = ip.partition("/")
    if prefix:
        return f"{addr.lower()}/{prefix}"
    return f"{addr.lower()}/{128 if ':' in addr else 32}"


def _is_ip(ip: str) -> bool:
    addr, _, prefix = ip.partition("/")
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        return False
    return not prefix or prefix.isdigit()


def revoke_on_delete(props: dict, machine_id: str) -> None:
    """Revoke with a reason (a wipe only with wipe_on_delete), unless keep_on_delete."""
    if props.get("keep_on_delete") is True or not machine_id:
        return
    client = _client(props)
    try:
        if client.get_machine(machine_id)["status"] == "revoked":
            return
        client.revoke(machine_id, props.get("wipe_on_delete") is True, props.get("revoke_reason") or "pulumi destroy")
    except AttestationError as e:
        if e.status != 404:
            raise


# ---- RegisteredMachine --------------------------------------------------------

_M_UPDATABLE = ["endpoint", "token", "hw_serial", "hw_product", "hw_mac", "desired_role", "pre_approve",
                "keep_on_delete", "wipe_on_delete", "revoke_reason"]
_HARDWARE = ["hw_serial", "hw_product", "hw_mac"]
_M_OUTPUTS = ["config_url", "config_token", "iso_url", "schematic_id", "installer_image"]


def _register_body(p: dict) -> dict:
    return {"ek_fingerprint": p["ek_fingerprint"], "ek_cert_pem": ek_material_base64(p["ek_cert_pem"]),
            "hw_serial": p.get("hw_serial"), "hw_product": p.get("hw_product"), "hw_mac": p.get("hw_mac"),
            "desired_role": p.get("desired_role")}


def _machine_live(base: dict, m: dict) -> dict:
    out = dict(base)
    out.update(machine_id=m["machine_id"], status=m["status"], role=m["role"])
    for k in _M_OUTPUTS:
        out.setdefault(k, None)
    return out


class RegisteredMachineProvider(ResourceProvider):
    def check(self, _olds: dict, news: dict) -> CheckResult:
        failures: list = []
        inputs = {"desired_role": "worker-app", "pre_approve": True, "keep_on_delete": False, "wipe_on_delete": False}
        inputs.update({k: v for k, v in news.items() if v is not None})
        _check_connection(inputs, failures)
        fp = inputs.get("ek_fingerprint")
        if not fp:
            failures.append(CheckFailure("ek_fingerprint", "is required"))
        elif _known(fp):
            if not _FP.match(str(fp)):
                failures.append(CheckFailure("ek_fingerprint", "must be 64 or 96 hex characters (SHA-256/SHA-384)"))
            else:
                inputs["ek_fingerprint"] = fp.lower()
        if not inputs.get("ek_cert_pem"):
            failures.append(CheckFailure("ek_cert_pem", "is required (PEM text of the EK certificate)"))
        _check_role(inputs, "desired_role", False, failures)
        mac = inputs.get("hw_mac")
        if _known(mac) and mac:
            if not _MAC.match(str(mac)):
                failures.append(CheckFailure("hw_mac", "expected a MAC address like 52:54:00:12:34:56"))
            inputs["hw_mac"] = str(mac).lower().replace("-", ":")
        return CheckResult(inputs, failures)

    def create(self, props: dict) -> CreateResult:
        r = _client(props).register(_register_body(props), props.get("pre_approve") is not False)
        outs = dict(props)
        outs.update(machine_id=r["machine_id"], status=r["status"], role=r["role"])
        for k in _M_OUTPUTS:  # config tokens come from /attest only, after the TPM proved itself
            outs[k] = r.get(k)
        return CreateResult(r["machine_id"], outs)

    def read(self, id_: str, props: dict) -> ReadResult:
        try:
            return ReadResult(id_, _machine_live(props, _client(props).get_machine(id_)))
        except AttestationError as e:
            if e.status == 404:
                return ReadResult("", {})
            raise

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        replaces = []
        if str(olds.get("ek_fingerprint", "")).lower() != str(news.get("ek_fingerprint", "")).lower():
            replaces.append("ek_fingerprint")
        if ek_material_base64(olds.get("ek_cert_pem") or "") != ek_material_base64(news.get("ek_cert_pem") or ""):
            replaces.append("ek_cert_pem")
        if olds.get("status") in DRIFT_STATES:
            replaces.append("status")
        changed = _changed(olds, news, _M_UPDATABLE)
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=False)

    def update(self, id_: str, olds: dict, news: dict) -> UpdateResult:
        client = _client(news)
        if _changed(olds, news, _HARDWARE):
            r = client.register(_register_body(news), news.get("pre_approve") is not False)
            if r["machine_id"] != id_:
                raise Exception(f"attestation service: re-registration answered machine {r['machine_id']}, expected {id_}")
        base = dict(olds)
        base.update(news)
        return UpdateResult(_machine_live(base, client.get_machine(id_)))

    def delete(self, id_: str, props: dict) -> None:
        revoke_on_delete(props, id_)


# ---- MachineApproval ---------------------------------------------------------

_DESIRED = ["role", "hostname", "assigned_ip", "reason"]
_SETTINGS = ["endpoint", "token", "keep_on_delete", "wipe_on_delete", "revoke_reason"]


def waiting_message(missing: int, received: int, required: Optional[int], expires: Optional[str]) -> str:
    s = "" if missing == 1 else "s"
    of = f" of {required}" if required else ""
    exp = f"; votes expire at {expires}Z" if expires else ""
    return f"waiting for {missing} more approval{s} from other operators (dual control: {received}{of} received{exp})"


def _approved(p: dict, m: dict) -> dict:
    out = dict(p)
    out.update(status=m["status"], approved=True, approvals_received=None, approvals_required=None,
               approval_expires_at=None, approved_role=m["role"], approved_hostname=m.get("hostname"),
               approved_ip=m.get("assigned_ip"),
               message=f"approved: role={m['role']} hostname={m.get('hostname') or 'none'} "
                       f"assigned_ip={m.get('assigned_ip') or 'none'}")
    return out


def _waiting(p: dict, received: int, required: int, expires: Optional[str]) -> dict:
    out = dict(p)
    out.update(status=PENDING_SECOND_APPROVAL, approved=False, approvals_received=received,
               approvals_required=required, approval_expires_at=expires, approved_role=None,
               approved_hostname=None, approved_ip=None,
               message=waiting_message(required - received, received, required, expires))
    return out


def _open_votes(votes: list) -> list:
    now = time.time()
    return [v for v in votes if not v["consumed"] and
            datetime.fromisoformat(v["expires_at"]).replace(tzinfo=timezone.utc).timestamp() >= now]


def _pending_from_votes(p: dict, votes: list, required: Optional[int]) -> dict:
    expires = sorted(v["expires_at"] for v in votes)[0]
    return _waiting(p, len(votes), required or len(votes) + 1, expires)


def cast_approval(client: AttestationClient, p: dict, required: Optional[int]) -> dict:
    """Approve, or cast this operator's dual-control vote — never a second one."""
    votes = _open_votes(client.approvals(p["machine_id"]))
    me = client.whoami() if votes else {}
    if votes and any(v["operator_cn"] == me.get("voter", me.get("identity")) for v in votes):
        return _pending_from_votes(p, votes, required)
    r = client.approve(p["machine_id"], p["role"], p.get("hostname"), p.get("assigned_ip"), p.get("reason"))
    if r.approved:
        return _approved(p, r.machine)
    v = r.vote
    return _waiting(p, v["approvals_received"], v["approvals_required"], v["expires_at"])


def needs_approval(olds: dict, news: dict) -> bool:
    """Not approved yet, a desired value changed, or the service holds other values."""
    return (olds.get("approved") is not True or bool(_changed(olds, news, _DESIRED))
            or olds.get("approved_role") != news.get("role")
            or (news.get("hostname") is not None and olds.get("approved_hostname") != news.get("hostname"))
            or (news.get("assigned_ip") is not None and olds.get("approved_ip") != normalize_ip(news.get("assigned_ip"))))


class MachineApprovalProvider(ResourceProvider):
    def check(self, _olds: dict, news: dict) -> CheckResult:
        failures: list = []
        inputs = {"keep_on_delete": False, "wipe_on_delete": False}
        inputs.update({k: v for k, v in news.items() if v is not None})
        _check_connection(inputs, failures)
        if not inputs.get("machine_id"):
            failures.append(CheckFailure("machine_id", "is required (RegisteredMachine.machine_id)"))
        _check_role(inputs, "role", True, failures)
        if _known(inputs.get("hostname")) and not _HOST.match(str(inputs["hostname"])):
            failures.append(CheckFailure("hostname", "must be an RFC 1123 host name"))
        if _known(inputs.get("assigned_ip")) and not _is_ip(str(inputs["assigned_ip"])):
            failures.append(CheckFailure("assigned_ip", "expected an IPv4 or IPv6 address with optional /prefix"))
        return CheckResult(inputs, failures)

    def create(self, props: dict) -> CreateResult:
        return CreateResult(props["machine_id"], cast_approval(_client(props), props, None))

    def read(self, id_: str, props: dict) -> ReadResult:
        client = _client(props)
        try:
            m = client.get_machine(props.get("machine_id") or id_)
        except AttestationError as e:
            if e.status == 404:
                return ReadResult("", {})
            raise
        if m["status"] in DRIFT_STATES:
            return ReadResult(id_, {**props, "status": m["status"], "message": f"machine is {m['status']} (changed outside Pulumi)"})
        votes = _open_votes(client.approvals(m["machine_id"]))
        if votes:
            return ReadResult(id_, _pending_from_votes(props, votes, props.get("approvals_required")))
        if m.get("approved_at"):
            return ReadResult(id_, _approved(props, m))
        return ReadResult(id_, {**props, "status": m["status"], "approved": False,
                                "message": "not approved: no open votes (they expired, or were never cast)"})

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        replaces = []
        if olds.get("machine_id") != news.get("machine_id"):
            replaces.append("machine_id")
        if olds.get("status") in DRIFT_STATES:
            replaces.append("status")
        changes = bool(replaces or _changed(olds, news, _SETTINGS) or needs_approval(olds, news))
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, id_: str, olds: dict, news: dict) -> UpdateResult:
        client = _client(news)
        if needs_approval(olds, news):
            return UpdateResult(cast_approval(client, news, olds.get("approvals_required")))
        return UpdateResult(_approved(news, client.get_machine(id_)))

    def delete(self, id_: str, props: dict) -> None:
        revoke_on_delete(props, props.get("machine_id") or id_)
