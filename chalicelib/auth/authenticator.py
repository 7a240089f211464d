"""One credential -> one principal, with a per-container cache of verified credentials.

A warm container trusts a credential it verified for `CG_AUTH_CACHE_TTL` seconds (default 5), so a
revoked key stops working on every warm function within that time, while a hit costs a dict lookup.
The cache is keyed by the SHA-256 of the credential, never the credential itself, and holds only
successes: a wrong key is verified (and rate limited) every time. MariaDB unreachable while verifying is
ServiceUnavailableError (503), never an open door.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from chalicelib.auth.keys import KEY_MARK, ApiKeyService
from chalicelib.auth.principal import Principal
from chalicelib.auth.tokens import looks_like_jwt, verify_token
from chalicelib.errors import AuthenticationError
from chalicelib.settings import get_settings
from chalicelib.warm import PerContainer

MAX_CACHED = 10_000


class Authenticator:
    def __init__(self, keys: ApiKeyService | None = None, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys or ApiKeyService()
        self.ttl = get_settings().auth_cache_ttl_seconds if ttl is None else ttl
        self._clock = clock
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, credential: str) -> Principal:
        fingerprint = hashlib.sha256(credential.encode("utf-8", "surrogatepass")).digest()
        now = self._clock()
        hit = self._cache.get(fingerprint)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal = self._verify(credential)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[fingerprint] = (principal, now + self.ttl)
        return principal

    def _verify(self, credential: str) -> Principal:
        if credential.startswith(KEY_MARK):
            return self.keys.verify(credential)  # ServiceUnavailableError (503) when MariaDB cannot be asked
        if looks_like_jwt(credential):
            return verify_token(credential)
        raise AuthenticationError("invalid credentials")

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


_authenticator: PerContainer[Authenticator] = PerContainer(Authenticator)


def get_authenticator() -> Authenticator:
    return _authenticator.get()


def set_authenticator(authenticator: Authenticator | None) -> None:
    _authenticator.set(authenticator)
