"""API keys: `cgk_<prefix>_<secret>`, shown once at creation and stored only as the SHA-256 of the whole key.

The secret has 256 bits of entropy, so a plain (unsalted) SHA-256 cannot be reversed or guessed; the
stored hash is compared in constant time. The prefix is public: it finds the row and tells keys apart in
listings. Revocation and expiry are checked in the lookup query itself.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import datetime
from typing import Any

from chalicelib.auth.principal import ROLES, Principal
from chalicelib.errors import AuthenticationError, ValidationError
from chalicelib.observability import logger
from chalicelib.repositories.api_keys import ApiKeyRepository

KEY_MARK = "cgk_"
PREFIX_LENGTH = 12
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
MAX_KEY_LENGTH = 128


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> tuple[str, str]:
    """(prefix, key) of a fresh key."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return prefix, f"{KEY_MARK}{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    if not key.startswith(KEY_MARK) or len(key) > MAX_KEY_LENGTH:
        return None
    prefix, sep, secret = key[len(KEY_MARK):].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or len(secret) < 32 or not set(secret) <= _SECRET_ALPHABET:
        return None
    return prefix


def validate_tenant(tenant: str | None) -> str:
    tenant = (tenant or "").strip()
    if not tenant or len(tenant) > 64 or not all(c.isalnum() or c in "-_." for c in tenant):
        raise ValidationError("tenant: 1 to 64 letters, digits, '-', '_' or '.'")
    return tenant


def validate_role(role: str | None) -> str:
    if role not in ROLES:
        raise ValidationError(f"role: one of {', '.join(ROLES)}")
    return role


class ApiKeyService:
    def __init__(self, keys: ApiKeyRepository | None = None) -> None:
        self.keys = keys or ApiKeyRepository()

    def create(self, *, tenant: str, role: str, name: str, created_by: str | None,
               expires_at: datetime | None = None) -> tuple[dict[str, Any], str]:
        """(the stored key's public fields, the key itself - returned this once and never again)."""
        tenant, role = validate_tenant(tenant), validate_role(role)
        name = (name or "").strip()[:128] or "unnamed"
        prefix, key = new_key()
        row = self.keys.create(prefix, digest(key), name, tenant, role, created_by, expires_at)
        logger.info("api key created", extra={"key_id": row["id"], "key_prefix": prefix, "tenant": tenant, "role": role})
        return row, key

    def verify(self, key: str) -> Principal:
        """The principal a key stands for; AuthenticationError when it is unknown, revoked or expired."""
        prefix = prefix_of(key)
        row = self.keys.lookup(prefix) if prefix else None
        if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), digest(key)):
            raise AuthenticationError("invalid credentials")
        return Principal(id=f"key:{row['id']}", tenant=row["tenant_id"], role=row["role"], kind="key", name=row["name"])

    def list(self, tenant: str | None) -> list[dict[str, Any]]:
        return self.keys.list(tenant)

    def revoke(self, key_id: str, tenant: str | None) -> dict[str, Any]:
        row = self.keys.revoke(key_id, tenant)
        logger.info("api key revoked", extra={"key_id": key_id, "tenant": row["tenant_id"]})
        return row
