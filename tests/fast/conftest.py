"""Fixtures of the fast tier: the real MariaDB test database, Redis db 15, the Kafka broker, an in-memory
JobQueue.

`mariadb`, `redis_server` and `kafka_broker` are how a test says it needs a service (tests/conftest.py
marks every other test `pure`); each fails at once with "run ./dev up" when its service is not there.
API tests use `client` (a chalice.test.Client over the real app) and start from empty tables.
"""
from __future__ import annotations

import json
import os
import pathlib
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

# `.venv/bin/pytest` (unlike `python -m pytest`) does not put the repository root on sys.path.
ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib import db
from chalicelib.jobs_queue import InMemoryJobQueue, set_job_queue

from db_snapshot import CORE_TABLES as TABLES, table_snapshot  # noqa: E402


def _reachable(what: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        pytest.fail(f"{what} at {host}:{port} is not reachable ({exc}): run `./dev up` (or `./dev test fast`)",
                    pytrace=False)


@pytest.fixture(scope="session")
def mariadb() -> None:
    """The test needs the MariaDB test database."""
    from chalicelib.settings import get_settings

    _reachable("MariaDB", get_settings().db_host, get_settings().db_port)


@pytest.fixture(scope="session")
def redis_server() -> None:
    """The test needs the stack's Redis (db 15 for tests)."""
    from urllib.parse import urlparse

    url = urlparse(os.environ["CG_REDIS_URL"])
    _reachable("Redis", url.hostname or "127.0.0.1", url.port or 6379)


@pytest.fixture(scope="session")
def kafka_broker() -> None:
    """The test needs the stack's Kafka broker."""
    host, _, port = os.environ.get("CG_KAFKA_BOOTSTRAP", "127.0.0.1:19092").split(",")[0].rpartition(":")
    _reachable("Kafka", host, int(port))


@pytest.fixture
def fresh_topic(kafka_broker) -> Iterator[Any]:  # noqa: ANN001
    """`fresh_topic(partitions, prefix)` -> the name of a new topic on the real broker (offsets start at 0),
    deleted after the test."""
    import uuid

    from kafka.admin import KafkaAdminClient, NewTopic

    from chalicelib.settings import get_settings

    admin = KafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap)
    made: list[str] = []

    def create(partitions: int = 1, prefix: str = "topic") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        made.append(name)
        return name

    yield create
    if made:
        admin.delete_topics(made)
    admin.close()


@pytest.fixture(scope="session")
def base_stack(mariadb, redis_server, kafka_broker) -> None:  # noqa: ANN001
    """The test needs every service `./dev test fast` starts (Pushgateway and Prometheus too)."""
    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    _reachable("Pushgateway", "127.0.0.1", cfg.pushgateway_port)
    _reachable("Prometheus", "127.0.0.1", cfg.prometheus_port)


def truncate_tables() -> None:
    with db.transaction() as cur:
        # The counters last (row_counts, quota_usage): the deletes before them were counted by their triggers
        # (the clusters' cascade to deployments by quota_usage's), rows with n = 0 stay behind.
        for table in (*TABLES, "api_keys", "quotas", "row_counts", "quota_usage"):  # quotas: an override must not outlive its test
            cur.execute(f"DELETE FROM {table}")
    # Not part of `snapshot` (a refused mutation is still audited); append-only, so emptied by TRUNCATE, which
    # its UPDATE/DELETE triggers do not see, as the migration user: the app's user may not (issue 18).
    owner = migration_connection()
    try:
        with owner.cursor() as cur:
            cur.execute("TRUNCATE TABLE audit_log")
    finally:
        owner.close()


def migration_connection():  # noqa: ANN201 - a pymysql connection
    """The test database as the migration user (DDL, TRUNCATE), for fixtures only; the app never has it."""
    import pymysql

    from chalicelib.settings import get_settings
    from devstack.config import StackConfig

    cfg, settings = StackConfig.from_env(), get_settings()
    return pymysql.connect(host=settings.db_host, port=settings.db_port, user=cfg.MIGRATION_USER,
                           password=cfg.migration_password(), database=settings.db_name, autocommit=True)


@pytest.fixture
def migration_db(mariadb) -> Iterator[Any]:  # noqa: ANN001
    """A connection to the test database as the migration user (the schema's owner), closed afterwards."""
    conn = migration_connection()
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def snapshot(mariadb):  # noqa: ANN001
    """`snapshot()` -> {table: (rows, checksum)}; equal before and after means nothing was written."""
    return table_snapshot


@pytest.fixture
def clean_db(mariadb) -> Iterator[None]:  # noqa: ANN001
    db.reset_connection()
    truncate_tables()
    yield


@pytest.fixture
def job_queue() -> Iterator[InMemoryJobQueue]:
    queue = InMemoryJobQueue()
    set_job_queue(queue)
    yield queue
    set_job_queue(None)


@pytest.fixture
def fresh_rate_limits(redis_server) -> None:  # noqa: ANN001
    # Tests create more jobs than the `jobs_create` bucket holds; each test starts with full buckets.
    # Only bucket state goes (SCAN, not FLUSHDB): other keys in the test db belong to other fixtures.
    from chalicelib.redis_client import get_redis

    redis = get_redis()
    keys = list(redis.scan_iter(match="limiter:*", count=1000))
    if keys:
        redis.delete(*keys)


@pytest.fixture
def app(clean_db, job_queue, fresh_rate_limits):  # noqa: ANN001 - fixtures
    from app import app as chalice_app
    from chalicelib.auth.authenticator import set_authenticator

    set_authenticator(None)  # no credential verified by an earlier test is still trusted
    return chalice_app


def new_api_key(role: str = "admin", tenant: str = "default", name: str = "test") -> str:
    """A fresh API key (in the test database): the one way the fast tier gets credentials (issue 13).
    Tenant `default` is the platform tenant, so its admin may call every route."""
    from chalicelib.auth.keys import ApiKeyService

    return ApiKeyService().create(tenant=tenant, role=role, name=name, created_by="tests")[1]


class SignedHttp:
    """chalice.test's `client.http`, sending an API key (X-API-Key) on every request that names no credential
    of its own (`key` None: none). The v1 scripts name distinct callers with X-User-ID; with authentication on
    the caller is the key, so each such name calls with a key of its own (same tenant and role) and stays a
    distinct caller. The one way the fast tier's requests carry credentials (ApiClient is built on it)."""

    def __init__(self, http, key: str | None, user_keys: dict[str, str] | None = None) -> None:  # noqa: ANN001
        self.http = http
        self.key = key
        self._user_keys = {} if user_keys is None else user_keys

    def credential(self, headers: dict[str, str]) -> dict[str, str]:
        names = {h.lower(): v for h, v in headers.items()}
        if not self.key or {"authorization", "x-api-key"} & set(names):
            return {}
        user = names.get("x-user-id")
        if user:
            if user not in self._user_keys:
                self._user_keys[user] = new_api_key(name=f"user {user}"[:128])
            return {"X-API-Key": self._user_keys[user]}
        return {"X-API-Key": self.key}

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | str = b""):
        return self.http.request(method, path, headers={**self.credential(headers or {}), **(headers or {})}, body=body)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw):
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)


def signed_client(test_client, role: str = "admin", tenant: str = "default"):  # noqa: ANN001
    """A chalice.test Client's stand-in whose `.http` signs every request with a fresh key."""
    import types

    return types.SimpleNamespace(http=SignedHttp(test_client.http, new_api_key(role, tenant)), lambda_=test_client.lambda_,
                                 events=test_client.events)


class ApiClient:
    """A thin JSON wrapper over SignedHttp: the key is sent unless the request's own headers name a
    credential, or `key` is None."""

    def __init__(self, http, key: str | None = None, user_keys: dict[str, str] | None = None) -> None:  # noqa: ANN001
        self.http = http
        self.key = key
        self.signed = SignedHttp(http, key, user_keys)

    def as_key(self, key: str | None) -> "ApiClient":
        """The same client, calling with another key (None: no credential)."""
        return ApiClient(self.http, key, self.signed._user_keys)

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | str | None = None,
                headers: dict[str, str] | None = None):
        headers = {"Content-Type": "application/json", **(headers or {})}
        if raw is None and body is not None:
            raw = json.dumps(body)
        response = self.signed.request(method, path, headers=headers, body=raw if raw is not None else b"")
        try:
            response.json = json.loads(response.body) if response.body else None
        except ValueError:  # not JSON (GET /metrics is Prometheus text)
            response.json = None
        return response

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def client(app) -> Iterator[ApiClient]:  # noqa: ANN001
    from chalice.test import Client

    with Client(app) as test_client:
        yield ApiClient(test_client.http, new_api_key())


@pytest.fixture
def make_cluster(client):  # noqa: ANN001
    def make(name: str = "web", region: str = "nyc3") -> dict[str, Any]:
        response = client.post("/api/v1/clusters", {"name": name, "region": region})
        assert response.status_code == 201, response.body
        return response.json["cluster"]

    return make
