"""Trusted events (issue 18): every record the app produces to Kafka carries an HMAC-SHA256 of its value in
the header `cg-signature` (`k=<key id>,v1=<hex>`); the event handler applies only records whose signature
checks against the current or the previous key, and dead-letters the rest with the reason (`unsigned`,
`bad_signature`), counted in `clustergenie_events_handled_total{outcome="malformed"}`.

The keys are one JSON document `{"current": {"id", "secret"}, "previous": {"id", "secret"} | null}`: from the
Secrets Manager secret `CG_EVENT_SIGNING_SECRET_ID` (deployed functions), or inline in
`CG_EVENT_SIGNING_KEYS` (local runs and the fast tests, from `stack.env`). Rotation without downtime
(`./dev rotate-event-key`): the new key becomes current and the old one previous, so records signed before
the rotation, or by a container that has not yet re-read the secret, still verify. A container re-reads the
secret after KEYS_TTL_SECONDS, or at once (at most every REFRESH_SECONDS) when a record names a key id it
does not know.
"""
from __future__ import annotations

import functools
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

from chalicelib.settings import get_settings

HEADER = "cg-signature"
KEYS_TTL_SECONDS = 60
REFRESH_SECONDS = 10


class SigningKeysMissing(RuntimeError):
    """Neither CG_EVENT_SIGNING_SECRET_ID nor CG_EVENT_SIGNING_KEYS is set: nothing can be signed or trusted."""


@dataclass(frozen=True)
class SigningKeys:
    current: tuple[str, bytes]
    previous: tuple[str, bytes] | None

    @classmethod
    def parse(cls, text: str) -> "SigningKeys":
        doc = json.loads(text)
        prev = doc.get("previous")
        return cls((doc["current"]["id"], doc["current"]["secret"].encode()),
                   (prev["id"], prev["secret"].encode()) if prev else None)

    def by_id(self, key_id: str) -> bytes | None:
        for known in (self.current, self.previous):
            if known is not None and hmac.compare_digest(known[0], key_id):
                return known[1]
        return None


def new_key_document(previous: dict | None = None) -> str:
    """A fresh key document: a new current key, `previous` (the old current) kept for verification."""
    return json.dumps({"current": {"id": secrets.token_hex(4), "secret": secrets.token_urlsafe(32)},
                       "previous": previous})


class _KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: SigningKeys | None = None
        self._read_at = 0.0

    def get(self, *, refresh: bool = False) -> SigningKeys:
        keys = self._keys  # the common case without the lock (issue 16: one call per record)
        if keys is not None and not refresh and time.monotonic() - self._read_at <= KEYS_TTL_SECONDS:
            return keys
        with self._lock:
            age = time.monotonic() - self._read_at
            if self._keys is None or age > KEYS_TTL_SECONDS or (refresh and age > REFRESH_SECONDS):
                self._keys, self._read_at = SigningKeys.parse(_read_document()), time.monotonic()
            return self._keys

    def forget(self) -> None:
        with self._lock:
            self._keys = None


def _read_document() -> str:
    settings = get_settings()
    if settings.event_signing_secret_id:
        from chalicelib.aws import client

        return client("secretsmanager").get_secret_value(SecretId=settings.event_signing_secret_id)["SecretString"]
    if settings.event_signing_keys:
        return settings.event_signing_keys
    raise SigningKeysMissing("no event signing keys: set CG_EVENT_SIGNING_SECRET_ID or CG_EVENT_SIGNING_KEYS")


_cache = _KeyCache()


def forget_keys() -> None:
    """Read the keys again on next use (tests; a rotation is picked up by the TTL)."""
    _cache.forget()


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 with `secret` absorbed, made once per key and only ever copied."""
    return hmac.new(secret, digestmod="sha256")


def _mac(secret: bytes, value: bytes) -> str:
    """HMAC-SHA256 of `value` (hex), as `hmac.digest(secret, value, "sha256").hex()` gives it, from a copy of the
    key's prepared HMAC: with OpenSSL 3 each one-shot HMAC fetches its algorithm and absorbs the key again
    (issue 16: the event handler checks one per record)."""
    mac = _keyed(secret).copy()
    mac.update(value)
    return mac.hexdigest()


def sign(value: bytes) -> bytes:
    """The `cg-signature` header value for a record whose value is `value`, with the current key."""
    key_id, secret = _cache.get().current
    return f"k={key_id},v1={_mac(secret, value)}".encode()


def _fields(header: bytes) -> tuple[str, str]:
    """(key id, mac) of a signature header, as `dict(part.split("=", 1) for part in text.split(","))` reads them
    (the last of a repeated field wins); the form `sign` writes (`k=<id>,v1=<hex>`) without building the dict."""
    text = header.decode("ascii")
    key_part, comma, mac_part = text.partition(",")
    if comma and key_part.startswith("k=") and mac_part.startswith("v1=") and "," not in mac_part:
        return key_part[2:], mac_part[3:]
    fields = dict(part.split("=", 1) for part in text.split(","))
    return fields["k"], fields["v1"]


def untrusted_reason(value: bytes, header: bytes | None) -> str | None:
    """None when `header` is a valid signature of `value` by the current or the previous key; else why not
    (`unsigned`, `bad_signature`)."""
    if not header:
        return "unsigned"
    try:
        key_id, mac = _fields(header)
    except (UnicodeDecodeError, ValueError, KeyError):
        return "bad_signature"
    secret = _cache.get().by_id(key_id) or _cache.get(refresh=True).by_id(key_id)
    if secret is None or not hmac.compare_digest(_mac(secret, value), mac):
        return "bad_signature"
    return None
