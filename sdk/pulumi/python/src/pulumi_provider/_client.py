"""Typed HTTP wrapper for the attestation service's REST API (docs/api.md).

Standard library only (urllib), so the client also runs where the Pulumi
SDK is not installed.
"""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional

_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 410: "Gone",
            413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
            503: "Service Unavailable"}
_HINTS = {401: " (check the operator token, e.g. `pulumi config set --secret attestation:token ...`)",
          403: " (the token is valid but lacks the operator role)"}


class AttestationError(Exception):
    """A failed call: ``status`` is the HTTP status (0 when the service could
    not be reached), ``detail`` the service's own ``detail`` text."""

    def __init__(self, message: str, status: int, detail: str, method: str, path: str):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.method = method
        self.path = path


@dataclass
class ApproveResult:
    """``approved`` with the MachineDetail, or a dual-control vote (202)."""
    approved: bool
    machine: Optional[dict] = None
    vote: Optional[dict] = None


def ek_material_base64(pem_or_base64: str) -> str:
    """The service wants base64 of the PEM (or DER) bytes; accept PEM text too."""
    if "-----BEGIN" in pem_or_base64:
        return base64.b64encode(pem_or_base64.encode()).decode()
    return "".join(pem_or_base64.split())


class AttestationClient:
    def __init__(self, endpoint: str, token: Optional[str] = None, timeout: float = 30.0):
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self._timeout = timeout

    def register(self, body: dict, as_operator: bool = True) -> dict:
        """POST /api/v1/register; with ``as_operator`` the token is sent and a new machine is pre-approved."""
        return self._call("POST", "/api/v1/register", body, auth=as_operator)[1]

    def get_machine(self, machine_id: str) -> dict:
        return self._call("GET", f"/api/v1/machines/{_q(machine_id)}")[1]

    def approve(self, machine_id: str, role: str, hostname: Optional[str] = None,
                assigned_ip: Optional[str] = None, reason: Optional[str] = None) -> ApproveResult:
        status, body = self._call("POST", f"/api/v1/machines/{_q(machine_id)}/approve",
                                  {"role": role, "hostname": hostname, "assigned_ip": assigned_ip, "reason": reason})
        if status == 202:
            return ApproveResult(approved=False, vote=body)
        return ApproveResult(approved=True, machine=body)

    def approvals(self, machine_id: str) -> list:
        return self._call("GET", f"/api/v1/machines/{_q(machine_id)}/approvals")[1]

    def revoke(self, machine_id: str, wipe: bool = False, reason: Optional[str] = None) -> dict:
        return self._call("POST", f"/api/v1/machines/{_q(machine_id)}/revoke", {"wipe": wipe, "reason": reason})[1]

    def lock(self, machine_id: str, reason: Optional[str] = None) -> dict:
        return self._call("POST", f"/api/v1/machines/{_q(machine_id)}/lock", {"reason": reason})[1]

    def unlock(self, machine_id: str, reason: Optional[str] = None) -> dict:
        return self._call("POST", f"/api/v1/machines/{_q(machine_id)}/unlock", {"reason": reason})[1]

    def whoami(self) -> dict:
        return self._call("GET", "/api/v1/auth/whoami")[1]

    def _call(self, method: str, path: str, body: Optional[dict] = None, auth: bool = True) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
            headers["Content-Type"] = "application/json"
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(self.endpoint + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                detail = json.loads(text).get("detail") or text
            except (ValueError, AttributeError):
                detail = text.strip()[:500]
            raise AttestationError(
                f"attestation service: {method} {path} answered {e.code} {_REASONS.get(e.code, '')}: "
                f"{detail}{_HINTS.get(e.code, '')}", e.code, str(detail), method, path) from None
        except (urllib.error.URLError, OSError) as e:
            why = str(getattr(e, "reason", e))
            raise AttestationError(f"attestation service at {self.endpoint} is unreachable ({why}) during "
                                   f"{method} {path}", 0, why, method, path) from None


def _q(s: str) -> str:
    return urllib.request.quote(s, safe="")
