"""Bearer tokens (JWT) from an identity provider, verified with PyJWT.

Signature (against a key from the configured JWKS document, chosen by the token's `kid`, or the configured
PEM public key), issuer, audience and expiry are all checked; `exp` is required. Tenant and role come from
the configured claims. The keys are read once per warm container. PyJWT (and the cryptography it loads) is
imported by the first token verified: API keys, the usual credential, never need it (issue 16).
"""
from __future__ import annotations

import functools
import pathlib
from typing import TYPE_CHECKING, Any

from chalicelib.auth.principal import ROLES, Principal
from chalicelib.errors import AuthenticationError
from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    import jwt


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2


@functools.lru_cache(maxsize=4)
def _jwks(path: str) -> jwt.PyJWKSet:
    import jwt

    return jwt.PyJWKSet.from_json(pathlib.Path(path).read_text())


@functools.lru_cache(maxsize=4)
def _pem(path: str) -> str:
    return pathlib.Path(path).read_text()


def _key_for(token: str, settings: Settings) -> Any:
    import jwt

    if settings.auth_jwt_jwks_file:
        kid = jwt.get_unverified_header(token).get("kid")
        for key in _jwks(settings.auth_jwt_jwks_file).keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise AuthenticationError("invalid credentials")
    if settings.auth_jwt_public_key_file:
        return _pem(settings.auth_jwt_public_key_file)
    raise AuthenticationError("invalid credentials")  # no identity provider configured: tokens are not accepted


def verify_token(token: str, settings: Settings | None = None) -> Principal:
    import jwt

    settings = settings or get_settings()
    try:
        claims = jwt.decode(
            token, _key_for(token, settings), algorithms=sorted(settings.auth_jwt_algorithms),
            audience=settings.auth_jwt_audience, issuer=settings.auth_jwt_issuer,
            options={"require": ["exp", "sub"], "verify_aud": settings.auth_jwt_audience is not None,
                     "verify_iss": settings.auth_jwt_issuer is not None},
        )
    except (jwt.PyJWTError, ValueError):
        raise AuthenticationError("invalid credentials") from None
    tenant, role = claims.get(settings.auth_jwt_tenant_claim), claims.get(settings.auth_jwt_role_claim)
    if not isinstance(tenant, str) or not tenant or role not in ROLES:
        raise AuthenticationError("invalid credentials")
    return Principal(id=f"token:{str(claims['sub'])[:100]}", tenant=tenant, role=role, kind="token",
                     name=str(claims.get("name", ""))[:128])
