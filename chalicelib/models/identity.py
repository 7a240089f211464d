"""Request and response shapes of the identity routes (issue 13): API keys, whoami, the audit log."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from chalicelib.models.domain import UtcDatetime, _Response
from chalicelib.models.requests import QueryParams, RequestBody, _paging

Role = Literal["viewer", "operator", "admin"]
TenantId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                            pattern=r"^[A-Za-z0-9._-]+$")]


class CreateApiKeyRequest(RequestBody):
    role: Role
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)] = "unnamed"
    tenant: TenantId | None = Field(None, description="default: the caller's tenant; only a platform admin "
                                                      "may name another")
    expires_at: AwareDatetime | None = None


class ApiKeyOut(_Response):
    id: str
    prefix: str = Field(description="the public start of the key (`cgk_<prefix>_...`)")
    name: str
    tenant: str = Field(validation_alias="tenant_id")
    role: Role
    created_by: str | None = None
    expires_at: UtcDatetime | None = None
    last_used_at: UtcDatetime | None = None
    revoked_at: UtcDatetime | None = None
    created_at: UtcDatetime


class ApiKeyCreated(_Response):
    key: ApiKeyOut
    secret: str = Field(description="the API key itself: shown this once, stored only as a hash")
    message: str


class ApiKeyEnvelope(_Response):
    key: ApiKeyOut
    message: str


class ApiKeyList(_Response):
    keys: list[ApiKeyOut]


class WhoAmI(_Response):
    principal: str
    tenant: str
    role: str
    kind: str
    name: str


class AuditQuery(QueryParams):
    tenant: TenantId | None = None
    principal: Annotated[str, StringConstraints(max_length=128)] | None = None
    resource_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    before_id: Annotated[int, Field(ge=1)] | None = Field(None, description="cursor: the `next_before_id` of the previous page")
    limit: Annotated[int, _paging(50, 200), Field(ge=1, le=200)] = 50


class AuditEntry(_Response):
    id: int
    occurred_at: UtcDatetime
    tenant: str = Field(validation_alias="tenant_id")
    principal: str
    role: str
    action: str
    resource_id: str | None = None
    outcome: int
    request_id: str


class AuditPage(_Response):
    entries: list[AuditEntry]
    next_before_id: int | None = Field(None, description="pass as `before_id` for the next page; absent on the last")
