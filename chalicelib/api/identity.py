"""/api/v1/auth (API keys, whoami) and /api/v1/audit (issue 13). Admins manage their own tenant's keys and
read their own tenant's audit log; a platform admin any tenant's."""
from __future__ import annotations

from chalicelib.api.responses import created, ok
from chalicelib.api.routing import current_request
from chalicelib.auth import audit
from chalicelib.auth.keys import ApiKeyService
from chalicelib.auth.principal import administered_tenant, current_principal
from chalicelib.http import parse_body, parse_query
from chalicelib.models.identity import (
    ApiKeyCreated, ApiKeyEnvelope, ApiKeyList, ApiKeyOut, AuditEntry, AuditPage, AuditQuery, CreateApiKeyRequest,
    WhoAmI,
)

keys = ApiKeyService()


def whoami():
    return ok(WhoAmI(**current_principal().as_dict()))


def create_key():
    body = parse_body(current_request(), CreateApiKeyRequest)
    principal = current_principal()
    tenant = administered_tenant(principal, body.tenant) or principal.tenant
    row, secret = keys.create(tenant=tenant, role=body.role, name=body.name, created_by=principal.id,
                              expires_at=body.expires_at)
    return created(ApiKeyCreated(key=ApiKeyOut.from_row(row), secret=secret,
                                 message="API key created: store the secret now, it is not shown again"))


def list_keys():
    tenant = (current_request().query_params or {}).get("tenant") or None
    rows = keys.list(administered_tenant(current_principal(), tenant))
    return ok(ApiKeyList(keys=ApiKeyOut.from_rows(rows)))


def revoke_key(key_id: str):
    row = keys.revoke(key_id, administered_tenant(current_principal()))
    return ok(ApiKeyEnvelope(key=ApiKeyOut.from_row(row), message="API key revoked"))


def list_audit():
    query = parse_query(current_request(), AuditQuery)
    rows = audit.page(tenant_id=administered_tenant(current_principal(), query.tenant), principal=query.principal,
                      resource_id=query.resource_id, since=query.since, until=query.until,
                      before_id=query.before_id, limit=query.limit)
    next_before = rows[-1]["id"] if len(rows) == query.limit else None
    return ok(AuditPage(entries=AuditEntry.from_rows(rows), next_before_id=next_before))


def _document() -> None:
    from chalicelib.api.openapi import Operation, _v1, document
    from chalicelib.models import identity as i

    document(
        Operation("GET", _v1("/auth/whoami"), "The caller: principal, tenant and role", "identity", i.WhoAmI),
        Operation("POST", _v1("/auth/keys"), "Create an API key (the secret is in this response only)", "identity",
                  i.ApiKeyCreated, 201, body=i.CreateApiKeyRequest),
        Operation("GET", _v1("/auth/keys"), "List API keys (never their secrets)", "identity", i.ApiKeyList),
        Operation("DELETE", _v1("/auth/keys/{key_id}"), "Revoke an API key (within seconds everywhere)", "identity",
                  i.ApiKeyEnvelope),
        Operation("GET", _v1("/audit"), "The audit log of mutations, newest first (cursor-paged)", "identity",
                  i.AuditPage, query=i.AuditQuery),
    )


_document()
