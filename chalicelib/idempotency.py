"""Idempotency-Key on every create (issue 18), Stripe-style, at the HTTP edge.

A create sent with an `Idempotency-Key` header is served once per caller and key for 24 hours: the first
request claims the key (a row in `idempotency_keys`, MariaDB) and its response is stored; the same key with
the same request (method, path and body) gets that response again, marked `Idempotent-Replayed: true`; the
same key with another request is a 422; while the first is still being served, a 409. A first request that
ends in a 5xx releases the key, so a retry is served afresh. Requests without the header are untouched.
"""
from __future__ import annotations

import hashlib
import json

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.errors import ConflictError, IdempotencyKeyReusedError, ValidationError
from chalicelib.http import JSON_HEADERS, caller_id, domain_error_response

TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255
# Every route that creates something (method, route template).
CREATE_ROUTES = frozenset({
    ("POST", "/api/v1/clusters"), ("POST", "/api/v1/droplets"), ("POST", "/api/v1/jobs"),
    ("POST", "/api/v1/autoscaling/policies"), ("POST", "/api/v1/deployments/start"), ("POST", "/api/v1/providers"),
    ("POST", "/api/v1/migrations"),
})
# Creates that are never replayed: a new API key's answer holds its secret, which must be shown once and
# never stored (a replay would keep it in `idempotency_keys`). A retried key creation makes another key.
NEVER_REPLAYED = frozenset({("POST", "/api/v1/auth/keys")})


def _fingerprint(request: Request) -> bytes:
    return hashlib.sha256(b"\0".join([request.method.encode(), request.path.encode(), request.raw_body or b""])).digest()


def _body_text(response: Response) -> str:
    return response.body if isinstance(response.body, str) else json.dumps(response.body)


def register_idempotency(app: Chalice) -> None:
    """Register after rate limiting: a replay is still a request the limiter counts."""

    @app.middleware("http")
    def idempotent(event: Request, get_response):  # noqa: ANN001 - Chalice's middleware signature
        key = (event.headers or {}).get("idempotency-key")
        if key is None or (event.method, event.path) not in CREATE_ROUTES:
            return get_response(event)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            return domain_error_response(ValidationError(f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} printable characters"))
        # Imported on the first keyed create: the database driver loads only in the function serving HTTP.
        from chalicelib.repositories.idempotency import IdempotencyRepository

        caller, fingerprint, keys = caller_id(event), _fingerprint(event), IdempotencyRepository()
        stored = keys.claim(caller, key, fingerprint, TTL_SECONDS)
        if stored is not None:
            if bytes(stored["fingerprint"]) != fingerprint:
                return domain_error_response(IdempotencyKeyReusedError(
                    "Idempotency-Key was already used with a different request"))
            if stored["status_code"] is None:
                return domain_error_response(ConflictError("a request with this Idempotency-Key is still in progress"))
            return Response(body=stored["response"], status_code=stored["status_code"],
                            headers={**JSON_HEADERS, "Idempotent-Replayed": "true"})
        try:
            response = get_response(event)
        except BaseException:
            keys.release(caller, key)
            raise
        if response.status_code >= 500:
            keys.release(caller, key)
        else:
            keys.record(caller, key, response.status_code, _body_text(response))
        return response
