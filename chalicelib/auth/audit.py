"""Every mutation through the API, recorded in the audit log (reads are not).

Recorded after the route answered, with its status as the outcome: who (principal id, never a secret),
tenant, what (`METHOD route`), the resource id (the route's path parameter, else the id in the created
resource), the request id and the time. A request refused for its role (403) is recorded too; one refused
for having no usable credential (401) is not - it has no "who", and a flood of them is rate limited instead.
A failure to write the audit row is logged and does not undo the answered mutation.
"""
from __future__ import annotations

import json
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.auth.principal import Principal
from chalicelib.observability import logger
from chalicelib.repositories.audit_log import AuditLogRepository

READS = frozenset({"GET", "HEAD", "OPTIONS"})
_repository = AuditLogRepository()


def _id_in(body: Any) -> str | None:
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if not isinstance(body, dict):
        return None
    for key in ("id", "job_id", "key_id"):
        if isinstance(body.get(key), str):
            return body[key]
    for value in body.values():
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return value["id"]
    return None


def resource_of(request: Request, response: Response | None) -> str | None:
    params = request.uri_params or {}
    if params:
        return str(next(iter(params.values())))
    if response is not None and response.status_code < 300:
        return _id_in(response.body)
    return None


def record(request: Request, principal: Principal, response: Response | None, request_id: str) -> None:
    if request.method in READS:
        return
    try:
        _repository.append(tenant_id=principal.tenant, principal=principal.id, role=principal.role,
                           action=f"{request.method} {request.path}", resource_id=resource_of(request, response),
                           outcome=response.status_code if response is not None else 500, request_id=request_id)
    except Exception:  # noqa: BLE001 - the mutation is done; a missing audit row is logged loudly, not a 500
        logger.exception("could not write the audit log", extra={"action": f"{request.method} {request.path}"})


def page(**filters: Any) -> list[dict[str, Any]]:
    return _repository.page(**filters)
