"""Rate limiting against the real Redis (db 15): buckets, scoped limiters, config, failure policy, HTTP.

Every test uses limiter names or scope ids of its own, so tests never share a bucket, and other
suites using the same Redis database are left alone.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
import uuid

import pytest
import redis
from chalice import Chalice
from chalice.test import Client

from conftest import signed_client
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from chalicelib.http import register_error_handling
from chalicelib.ratelimit import LimiterManager, RedisTokenBucket, Scope, register_rate_limiting
from chalicelib.ratelimit import metrics, redis_bucket
from chalicelib.ratelimit.config import config_key
from chalicelib.ratelimit.manager import REDIS_RETRY_AFTER_FAILURE_SECONDS, get_limiter_manager
from chalicelib.ratelimit.redis_bucket import bucket_key
from chalicelib.ratelimit.routes import LIMITED_ROUTES
from chalicelib.redis_client import get_redis
from chalicelib.settings import get_settings
from private_redis import free_port, private_redis_server

JSON = {"Content-Type": "application/json"}


def served_samples(name: str) -> list:
    """The samples of `name` on the page GET /metrics serves (every instance's counts, flushed first)."""
    from chalicelib.metrics import exposition

    text = exposition.render([exposition.AggregatedCollector(get_redis())]).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def served(name: str, labels: dict[str, str]) -> float | None:
    return next((s.value for s in served_samples(name) if s.labels == labels), None)


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def r(redis_server) -> redis.Redis:  # noqa: ANN001
    return get_redis()


@pytest.fixture
def cleanup(r, mariadb):  # noqa: ANN001
    from chalicelib.repositories.limiter_overrides import LimiterOverrideRepository

    keys: list[str] = []
    yield keys
    if keys:
        r.delete(*keys)
        for key in keys:  # the durable copy of a config override (issue 17)
            if key.startswith("limiter_config:"):
                LimiterOverrideRepository().delete(key)


def quick_client(port: int) -> redis.Redis:
    """A client that gives up at once, so tests of a dead Redis do not wait out the default retries."""
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5,
                       retry=Retry(NoBackoff(), 0), decode_responses=True)


@pytest.fixture
def throwaway_redis(redis_server):  # noqa: ANN001 - the shared one serves /metrics
    """A private redis-server, so a test can stop it without touching the shared one."""
    with private_redis_server() as (port, proc):
        yield quick_client(port), proc


@pytest.mark.parametrize("n", [0, -1, 6])
def test_requests_no_bucket_could_grant_are_an_explicit_error(r, n):
    with pytest.raises(ValueError):
        RedisTokenBucket(r, bucket_key(unique(), "global"), 1, 5).allow(n)


# --- RedisTokenBucket ---------------------------------------------------------------------------------

def test_redis_bucket_zero_elapsed_denies_after_capacity_with_sane_retry_after(r, cleanup):
    key = bucket_key(unique(), "global")
    cleanup.append(key)
    bucket = RedisTokenBucket(r, key, refill_rate=0.1, capacity=3)
    decisions = [bucket.allow() for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    denied = decisions[-1]
    assert denied.remaining < 0.01
    assert 9.8 < denied.retry_after <= 10.0
    assert denied.headers() == {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "Retry-After": "10"}


def test_redis_bucket_long_idle_caps_at_capacity(r, cleanup):
    key = bucket_key(unique(), "global")
    cleanup.append(key)
    bucket = RedisTokenBucket(r, key, refill_rate=1, capacity=4)
    bucket.allow(4)
    # Pretend the bucket was last touched a day ago (the server clock is the only clock the script reads).
    r.hset(key, "ts", (r.time()[0] - 86_400) * 1_000_000)  # microseconds, as the script stores it
    assert bucket.available() == 4
    assert [bucket.allow().allowed for _ in range(5)] == [True, True, True, True, False]


def test_redis_bucket_state_is_one_hash_expiring_after_full_refill(r, cleanup):
    key = bucket_key(unique(), "global")
    cleanup.append(key)
    RedisTokenBucket(r, key, refill_rate=0.5, capacity=5).allow()
    assert set(r.hgetall(key)) == {"tokens", "ts"}
    assert 10_000 < r.pttl(key) <= 11_000  # 5 tokens / 0.5 per s = 10 s, plus a second of slack


def test_redis_bucket_peek_consumes_nothing_and_writes_nothing(r, cleanup):
    key = bucket_key(unique(), "global")
    cleanup.append(key)
    bucket = RedisTokenBucket(r, key, refill_rate=1, capacity=5)
    assert bucket.available() == 5
    assert not r.exists(key)


def test_redis_bucket_is_one_round_trip_and_survives_noscript(throwaway_redis, monkeypatch):
    client, _ = throwaway_redis  # a server of our own, so SCRIPT FLUSH touches nobody else
    bucket = RedisTokenBucket(client, bucket_key(unique(), "global"), refill_rate=1, capacity=10)
    bucket.allow()  # script known to the server from here on
    sent = []
    connection = client.connection_pool.get_connection()
    client.connection_pool.release(connection)
    connection_class = type(connection)
    real_send = connection_class.send_packed_command

    def spy(self, command, check_health=True):
        wire = b"".join(command) if isinstance(command, (list, tuple)) else command
        sent.append(wire.split(b"\r\n")[2].decode().upper())  # the command's name
        return real_send(self, command, check_health)

    monkeypatch.setattr(connection_class, "send_packed_command", spy)
    assert bucket.allow().allowed
    assert bucket.allow(2).allowed  # the general path, for n other than 1
    assert sent == ["EVALSHA", "EVALSHA"]
    # A server that lost its scripts (restart, failover, SCRIPT FLUSH) answers NOSCRIPT: reload, retry.
    client.script_flush()
    sent.clear()
    assert bucket.allow().allowed
    assert sent == ["EVALSHA", "SCRIPT", "EVALSHA"]
    client.script_flush()
    sent.clear()
    assert bucket.allow(2).allowed
    assert sent == ["EVALSHA", "SCRIPT", "EVALSHA"]


def test_a_busy_decision_line_sends_the_caller_the_pooled_way_not_to_wait(r, cleanup):
    key = bucket_key(unique(), "global")
    cleanup.append(key)
    bucket = RedisTokenBucket(r, key, refill_rate=1, capacity=10)
    line = redis_bucket._decision_line(r)
    assert line._lock.acquire()  # another thread of `chalice local` is mid-decision on the line
    try:
        decision = bucket.allow()
    finally:
        line._lock.release()
    assert decision.allowed and decision.remaining == pytest.approx(9, abs=0.1)
    assert bucket.allow().remaining == pytest.approx(8, abs=0.1)  # and the line, free again, agrees


def test_a_decision_line_cut_by_the_server_is_replaced_without_failing_a_decision(throwaway_redis):
    client, _ = throwaway_redis
    bucket = RedisTokenBucket(client, bucket_key(unique(), "global"), refill_rate=1, capacity=10)
    assert bucket.allow().allowed
    # Cut every client connection except the one doing the cutting (a failover or idle-timeout).
    killer = client.connection_pool.get_connection()
    try:
        killer.send_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert killer.read_response() >= 1
    finally:
        client.connection_pool.release(killer)
    assert [bucket.allow().remaining for _ in range(3)] == pytest.approx([8, 7, 6], abs=0.1)
    assert redis_bucket._decision_line(client)._connection.is_connected  # reconnected, in use again


# --- LimiterManager: scopes, config lookup, config cache -------------------------------------------

def test_scopes_are_isolated(r, cleanup):
    name = unique()
    manager = LimiterManager(r)
    scopes = ["global", "user:alice", "user:bob", "cluster:c1"]
    cleanup.extend(bucket_key(name, s) for s in scopes)
    for scope in scopes:
        assert [manager.allow(name, scope).allowed for _ in range(6)] == [True] * 5 + [False]
    assert not manager.allow(name, "user:alice").allowed
    assert manager.allow(name, "user:carol").allowed
    cleanup.append(bucket_key(name, "user:carol"))


def test_builtin_defaults_match_the_v1_contract(r):
    manager = LimiterManager(r)
    assert manager.config("diagnosis", Scope("cluster", unique())).as_dict() == {"refill_rate": 0.2, "capacity": 5}
    assert manager.config("jobs_create", Scope("user", unique())).as_dict() == {"refill_rate": 0.1, "capacity": 3}
    assert manager.config(unique(), Scope("global")).as_dict() == {"refill_rate": 0.2, "capacity": 5}


def test_config_lookup_order_is_scope_then_global_then_defaults_field_by_field(r, cleanup):
    name = unique()
    alice, bob = Scope("user", "alice"), Scope("user", "bob")
    cleanup.extend([config_key(name, alice), config_key(name, Scope("global"))])

    def fresh(scope):
        return LimiterManager(r).config(name, scope).as_dict()

    assert fresh(alice) == {"refill_rate": 0.2, "capacity": 5}
    r.hset(config_key(name, Scope("global")), mapping={"refill_rate": "2", "capacity": "20"})
    assert fresh(alice) == {"refill_rate": 2.0, "capacity": 20}
    r.hset(config_key(name, alice), mapping={"capacity": "7"})
    assert fresh(alice) == {"refill_rate": 2.0, "capacity": 7}  # capacity from the scope, rate from global
    assert fresh(bob) == {"refill_rate": 2.0, "capacity": 20}
    r.hset(config_key(name, alice), mapping={"refill_rate": "0.5"})
    assert fresh(alice) == {"refill_rate": 0.5, "capacity": 7}
    # A hand-written value that breaks the bounds is skipped, not fatal.
    r.hset(config_key(name, alice), mapping={"refill_rate": "-3", "capacity": "lots"})
    assert fresh(alice) == {"refill_rate": 2.0, "capacity": 20}


def test_config_change_is_seen_once_the_cache_ttl_passes_without_a_read_per_request(r, cleanup):
    name = unique()
    cleanup.extend([config_key(name, Scope("global")), bucket_key(name, "global")])
    clock = FakeClock()
    manager = LimiterManager(r, config_ttl=3, clock=clock)
    assert manager.allow(name, "global").limit == 5

    r.hset(config_key(name, Scope("global")), mapping={"capacity": "9"})
    reads = []
    real_pipeline = r.pipeline
    r.pipeline = lambda *a, **kw: reads.append(1) or real_pipeline(*a, **kw)
    try:
        clock.advance(2.9)
        assert manager.allow(name, "global").limit == 5  # cached: no config read
        assert reads == []
        clock.advance(0.2)
        assert manager.allow(name, "global").limit == 9  # seen 3 s after the change at most
        assert reads == [1]
    finally:
        del r.pipeline


def test_default_config_cache_ttl_is_a_few_seconds():
    assert 0 < get_settings().ratelimit_config_ttl_seconds <= 10


def test_lowering_capacity_caps_an_existing_bucket(r, cleanup):
    name = unique()
    cleanup.extend([config_key(name, Scope("global")), bucket_key(name, "global")])
    manager = LimiterManager(r, config_ttl=0)
    assert manager.allow(name, "global").remaining == 4
    r.hset(config_key(name, Scope("global")), mapping={"capacity": "2"})
    assert [manager.allow(name, "global").allowed for _ in range(3)] == [True, True, False]


# --- Redis unreachable: fail-open / fail-closed -----------------------------------------------------

def test_fail_open_by_default_and_fail_closed_per_limiter_when_redis_is_stopped(throwaway_redis):
    client, proc = throwaway_redis
    open_name, closed_name = unique("open"), unique("closed")
    manager = LimiterManager(client, fail_closed={closed_name})
    assert manager.allow(open_name, "global").allowed and not manager.allow(open_name, "global").degraded
    assert manager.allow(closed_name, "global").allowed
    failures_before = served(
        "clustergenie_rate_limit_store_failures_total", {"name": closed_name, "policy": "closed"}) or 0

    proc.terminate()
    proc.wait(timeout=5)

    admitted = manager.allow(open_name, "global")
    assert admitted.allowed and admitted.degraded
    denied = manager.allow(closed_name, "global")
    assert not denied.allowed and denied.degraded
    assert denied.headers() == {"X-RateLimit-Limit": "5", "Retry-After": "1"}
    assert served(
        "clustergenie_rate_limit_store_failures_total", {"name": closed_name, "policy": "closed"}) == failures_before + 1
    assert served(
        "clustergenie_rate_limit_store_failures_total", {"name": open_name, "policy": "open"}) == 1


def test_unreachable_redis_uses_the_cached_config_while_it_is_down(throwaway_redis):
    client, proc = throwaway_redis
    name = unique()
    client.hset(config_key(name, Scope("global")), mapping={"capacity": "42"})
    clock = FakeClock()
    manager = LimiterManager(client, config_ttl=1, fail_closed={name}, clock=clock)
    assert manager.allow(name, "global").limit == 42
    proc.terminate()
    proc.wait(timeout=5)
    clock.advance(5)
    denied = manager.allow(name, "global")
    assert denied.degraded and denied.limit == 42


def test_after_a_failure_decisions_skip_redis_for_a_while_then_probe_again():
    client = quick_client(free_port())  # nothing listens there
    calls = []
    real_get_connection = client.connection_pool.get_connection
    client.connection_pool.get_connection = lambda *a, **kw: calls.append(1) or real_get_connection(*a, **kw)
    clock = FakeClock()
    manager = LimiterManager(client, clock=clock)
    assert manager.allow("diagnosis", "cluster:c1").allowed
    probes = len(calls)
    assert probes >= 1
    clock.advance(REDIS_RETRY_AFTER_FAILURE_SECONDS - 0.1)
    started = time.monotonic()
    assert all(manager.allow("diagnosis", "cluster:c1").degraded for _ in range(100))
    assert time.monotonic() - started < 0.1
    assert len(calls) == probes  # no round trip while the failure is recent
    clock.advance(0.2)
    assert manager.allow("diagnosis", "cluster:c1").degraded
    assert len(calls) > probes


# --- Metrics -----------------------------------------------------------------------------------------

def test_denials_are_counted_by_scope_type_and_tokens_published(r, cleanup):
    name = unique()
    manager = LimiterManager(r)
    cleanup.append(bucket_key(name, "user:alice"))
    for _ in range(7):
        manager.allow(name, "user:alice")
    assert served("clustergenie_rate_limit_exceeded_total", {"name": name, "scope_type": "user"}) == 2
    assert served("clustergenie_rate_limit_available_tokens", {"name": name, "scope": "user"}) < 1


def test_per_user_and_per_cluster_scopes_do_not_explode_the_series_count_nor_name_a_tenants_ids(r, cleanup):
    name = unique()
    manager = LimiterManager(r)
    for i in range(300):
        manager.allow(name, f"user:u{i}")
    for i in range(150):
        manager.allow(name, f"cluster:c{i}")
    cleanup.extend([bucket_key(name, f"user:u{i}") for i in range(300)])
    cleanup.extend([bucket_key(name, f"cluster:c{i}") for i in range(150)])
    labels = {
        sample.labels["scope"]
        for sample in served_samples("clustergenie_rate_limit_available_tokens") if sample.labels["name"] == name
    }
    assert labels == {"user", "cluster"}  # GET /metrics is public: no user or cluster id (issue 13)


# --- HTTP: the middleware and the route table ----------------------------------------------------------

def limited_app(manager: LimiterManager, diagnosis_error: Exception | None = None) -> Chalice:
    """A fresh app with the real route table and stand-in routes, so the middleware is tested on its own."""
    app = Chalice(app_name="ratelimit-test")
    app.experimental_feature_flags.update({"BLUEPRINTS"})
    register_error_handling(app)

    @app.middleware("http")
    def authentication_off(event, get_response):  # noqa: ANN001 - as the local stage with CG_AUTH_ENABLED=false:
        from chalicelib.auth.principal import LOCAL, acting_as  # X-User-ID names the caller (issue 13)

        with acting_as(LOCAL):
            return get_response(event)

    register_rate_limiting(app, manager=lambda: manager)

    @app.route("/api/v1/jobs", methods=["POST"])
    def create_job():
        return {"job": {"id": "j1"}, "message": "queued"}

    @app.route("/api/v1/diagnosis/diagnose", methods=["POST"])
    def diagnose():
        from chalicelib.errors import ValidationError

        if diagnosis_error is not None:
            raise diagnosis_error
        body = app.current_request.json_body
        if not isinstance(body, dict) or not isinstance(body.get("cluster_id"), str):
            raise ValidationError("cluster_id: field required")
        return {"cluster": {"id": body["cluster_id"]}, "insights": [], "recommendations": []}

    @app.route("/api/v1/jobs", methods=["GET"])
    def list_jobs():
        return {"jobs": []}

    return app


def test_route_table_limits_job_creation_per_user_and_diagnosis_per_cluster():
    table = {(route.method, route.path): route.limiter for route in LIMITED_ROUTES}
    assert table[("POST", "/api/v1/jobs")] == "jobs_create"
    assert table[("POST", "/api/v1/diagnosis/diagnose")] == "diagnosis"
    # every other write route is limited too (issue 18): tests/fast/test_hardening.py checks the whole table


def test_job_creation_is_limited_per_user_with_429_envelope_and_headers(r, cleanup):
    alice, bob = unique("alice"), unique("bob")
    cleanup.extend([bucket_key("jobs_create", f"user:{alice}"), bucket_key("jobs_create", f"user:{bob}")])
    with Client(limited_app(LimiterManager(r))) as client:
        responses = [client.http.post("/api/v1/jobs", headers={**JSON, "X-User-ID": alice}, body="{}") for _ in range(4)]
        assert [resp.status_code for resp in responses] == [200, 200, 200, 429]
        assert [resp.headers["X-RateLimit-Remaining"] for resp in responses] == ["2", "1", "0", "0"]
        assert all(resp.headers["X-RateLimit-Limit"] == "3" for resp in responses)
        assert "Retry-After" not in responses[0].headers
        denied = responses[-1]
        assert denied.json_body == {"error": "rate limit exceeded"}
        assert denied.headers["Retry-After"] == "10"  # 1 token at 0.1/s, in whole seconds rounded up
        assert denied.headers["Content-Type"] == "application/json"
        assert client.http.post("/api/v1/jobs", headers={**JSON, "X-User-ID": bob}, body="{}").status_code == 200
        assert "X-RateLimit-Limit" not in client.http.get("/api/v1/jobs").headers


def test_diagnosis_is_limited_per_cluster_named_in_the_body(r, cleanup):
    c1, c2 = unique("c"), unique("c")
    cleanup.extend([bucket_key("diagnosis", f"cluster:{c1}"), bucket_key("diagnosis", f"cluster:{c2}")])
    with Client(limited_app(LimiterManager(r))) as client:
        def diagnose(cluster_id):
            return client.http.post("/api/v1/diagnosis/diagnose", headers=JSON, body=json.dumps({"cluster_id": cluster_id}))

        assert [diagnose(c1).status_code for _ in range(6)] == [200] * 5 + [429]
        assert diagnose(c2).status_code == 200
        denied = diagnose(c1)
        assert denied.headers["Retry-After"] == "5" and denied.headers["X-RateLimit-Limit"] == "5"


@pytest.mark.parametrize("body", ["{not json", "[]", "{}", '{"cluster_id": 7}', ""])
def test_unparsable_diagnosis_body_gets_the_routes_own_400(r, body):
    with Client(limited_app(LimiterManager(r))) as client:
        response = client.http.post("/api/v1/diagnosis/diagnose", headers=JSON, body=body)
        assert response.status_code == 400
        assert "error" in response.json_body


def test_admitted_requests_that_fail_still_carry_the_rate_limit_headers(r, cleanup):
    cluster = unique("c")
    cleanup.append(bucket_key("diagnosis", f"cluster:{cluster}"))
    from chalicelib.errors import NotFoundError

    with Client(limited_app(LimiterManager(r), diagnosis_error=NotFoundError("cluster not found"))) as client:
        response = client.http.post("/api/v1/diagnosis/diagnose", headers=JSON, body=json.dumps({"cluster_id": cluster}))
        assert response.status_code == 404
        assert response.headers["X-RateLimit-Remaining"] == "4"


def test_http_fail_open_and_fail_closed_with_redis_stopped(throwaway_redis):
    client_redis, proc = throwaway_redis
    proc.terminate()
    proc.wait(timeout=5)
    for fail_closed, expected in [(set(), 200), ({"jobs_create"}, 503)]:
        with Client(limited_app(LimiterManager(client_redis, fail_closed=fail_closed))) as client:
            response = client.http.post("/api/v1/jobs", headers={**JSON, "X-User-ID": "u"}, body="{}")
            assert response.status_code == expected
            if expected == 503:
                assert response.json_body == {"error": "rate limiter unavailable"}
                assert response.headers["Retry-After"] == "1"


def _real_app_or_skip(path: str):
    try:
        from app import app
    except ImportError as exc:  # another helper's module is not there yet
        pytest.skip(f"app does not import yet: {exc}")
    if "POST" not in app.routes.get(path, {}):
        pytest.skip(f"POST {path} is not built yet")
    return app


def test_real_app_limits_post_jobs_per_user(cleanup, mariadb):  # noqa: ANN001
    app = _real_app_or_skip("/api/v1/jobs")
    user = unique("user")
    with Client(app) as raw_client:
        client = signed_client(raw_client)  # X-User-ID -> a key of its own: the principal is the scope
        key_id = client.http.request("GET", "/api/v1/auth/whoami", headers={"X-User-ID": user}).json_body["principal"]
        cleanup.append(bucket_key("jobs_create", f"user:{key_id}"))
        # An invalid body: the route answers 400 and nothing is created, but the tokens are spent.
        statuses = [client.http.post("/api/v1/jobs", headers={**JSON, "X-User-ID": user}, body="{}") for _ in range(4)]
        assert [resp.status_code == 429 for resp in statuses] == [False, False, False, True]
        assert statuses[0].headers["X-RateLimit-Limit"] == "3"
        assert statuses[-1].json_body == {"error": "rate limit exceeded"}
        assert statuses[-1].headers["Retry-After"] == "10"


def test_real_app_limits_diagnosis_per_cluster(cleanup, mariadb):  # noqa: ANN001
    app = _real_app_or_skip("/api/v1/diagnosis/diagnose")
    cluster = unique("cluster-missing-")
    cleanup.append(bucket_key("diagnosis", f"cluster:{cluster}"))
    with Client(app) as raw_client:
        client = signed_client(raw_client)
        body = json.dumps({"cluster_id": cluster})
        statuses = [client.http.post("/api/v1/diagnosis/diagnose", headers=JSON, body=body) for _ in range(6)]
        assert [resp.status_code == 429 for resp in statuses] == [False] * 5 + [True]
        assert statuses[-1].headers["Retry-After"] == "5"


# --- Observability routes -------------------------------------------------------------------------------

def observability_app() -> Chalice:
    """The real app (its route table declares the observability routes)."""
    from app import app

    return app


@pytest.fixture
def api(redis_server, mariadb):  # noqa: ANN001
    with Client(observability_app()) as client:
        yield signed_client(client)  # the observability routes need a platform admin (issue 13)


def post_config(api, **body):
    return api.http.post("/api/v1/observability/ratelimit/config", headers=JSON, body=json.dumps(body))


def test_status_route_reports_a_bucket_without_consuming(api, r, cleanup):
    name = unique()
    cleanup.append(bucket_key(name, "cluster:c9"))
    LimiterManager(r).allow(name, "cluster:c9", 2)
    for _ in range(2):
        response = api.http.get(f"/api/v1/observability/ratelimit?name={name}&scope_type=cluster&scope_id=c9")
        assert response.status_code == 200
        body = response.json_body
        assert body["name"] == name and body["scope"] == "cluster:c9"
        assert body["capacity"] == 5 and body["rate_per_sec"] == 0.2
        assert 3 <= body["available"] < 3.1


def test_config_routes_save_get_list_and_delete(api, r, cleanup):
    name = unique()
    key = f"limiter_config:{name}:user:alice"
    cleanup.extend([key, f"limiter_config:{name}:global"])
    saved = post_config(api, name=name, scope_type="user", scope_id="alice", refill_rate=0.5, capacity=2)
    assert saved.status_code == 200
    assert saved.json_body["config_key"] == key and saved.json_body["config"] == {"refill_rate": 0.5, "capacity": 2}
    assert r.hgetall(key) == {"refill_rate": "0.5", "capacity": "2"}
    assert post_config(api, name=name, refill_rate=3).status_code == 200

    got = api.http.get(f"/api/v1/observability/ratelimit/config?name={name}&scope_type=user&scope_id=alice")
    assert got.json_body == {"key": key, "name": name, "scope": "user:alice", "config": {"refill_rate": 0.5, "capacity": 2}}
    assert api.http.get(f"/api/v1/observability/ratelimit/config?name={name}&scope_type=user&scope_id=bob").status_code == 404

    listed = api.http.get(f"/api/v1/observability/ratelimit/config/list?name={name}").json_body
    assert listed["count"] == 2
    assert [(item["name"], item["scope"]) for item in listed["items"]] == [(name, "global"), (name, "user:alice")]
    only_alice = api.http.get(f"/api/v1/observability/ratelimit/config/list?name={name}&scope_type=user&scope_id=alice")
    assert [item["key"] for item in only_alice.json_body["items"]] == [key]
    every_user = api.http.get(f"/api/v1/observability/ratelimit/config/list?name={name}&scope_type=user")
    assert [item["key"] for item in every_user.json_body["items"]] == [key]
    only_global = api.http.get(f"/api/v1/observability/ratelimit/config/list?name={name}&scope_type=global")
    assert [item["scope"] for item in only_global.json_body["items"]] == ["global"]
    assert api.http.get("/api/v1/observability/ratelimit/config/list?scope_type=tenant").status_code == 400

    deleted = api.http.delete("/api/v1/observability/ratelimit/config", headers=JSON, body=json.dumps({"key": key}))
    assert deleted.json_body == {"ok": True, "deleted": key}
    assert not r.exists(key)
    by_name = api.http.delete(f"/api/v1/observability/ratelimit/config?name={name}")
    assert by_name.status_code == 200 and not r.exists(f"limiter_config:{name}:global")
    assert api.http.delete(f"/api/v1/observability/ratelimit/config?name={name}").status_code == 404


def test_saved_config_takes_effect_in_this_container_at_once(api, r, cleanup):
    name = unique()
    cleanup.extend([config_key(name, Scope("global")), bucket_key(name, "global")])
    manager = get_limiter_manager()
    assert manager.config(name, Scope("global")).capacity == 5  # now cached
    post_config(api, name=name, capacity=11)
    assert manager.config(name, Scope("global")).capacity == 11


def test_list_uses_scan_never_keys(api, r):
    calls = []
    real_execute = r.execute_command
    r.execute_command = lambda *args, **kw: calls.append(args[0]) or real_execute(*args, **kw)
    try:
        assert api.http.get("/api/v1/observability/ratelimit/config/list").status_code == 200
    finally:
        del r.execute_command
    assert "KEYS" not in calls and "SCAN" in calls


@pytest.mark.parametrize(
    "body, field",
    [
        ({"refill_rate": 0, "capacity": 5}, "refill_rate"),
        ({"refill_rate": -1, "capacity": 5}, "refill_rate"),
        ({"refill_rate": 1e12}, "refill_rate"),
        ({"refill_rate": "fast"}, "refill_rate"),
        ({"refill_rate": True}, "refill_rate"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": -5}, "capacity"),
        ({"capacity": 10**12}, "capacity"),
        ({"capacity": 2.5}, "capacity"),
        ({"capacity": "5"}, "capacity"),
        ({"scope_type": "tenant", "scope_id": "x", "capacity": 5}, "scope_type"),
        ({"scope_type": "user", "capacity": 5}, "scope_id"),
        ({"scope_type": "cluster", "scope_id": "  ", "capacity": 5}, "scope_id"),
        ({"scope_type": "user", "scope_id": "a" * 500, "capacity": 5}, "scope_id"),
        ({}, "refill_rate or capacity"),
        ({"capacity": 5, "burst": 9}, "burst"),
    ],
)
def test_bad_config_is_a_400_naming_the_field(api, r, body, field):
    name = unique()
    response = post_config(api, name=name, **body)
    assert response.status_code == 400
    assert field in response.json_body["error"]
    assert not list(r.scan_iter(match=f"limiter_config:{name}:*"))


@pytest.mark.parametrize("body", [{"capacity": 5}, {"name": "", "capacity": 5}, {"name": "a b", "capacity": 5}])
def test_config_needs_a_valid_limiter_name(api, body):
    response = api.http.post("/api/v1/observability/ratelimit/config", headers=JSON, body=json.dumps(body))
    assert response.status_code == 400 and "name" in response.json_body["error"]


def test_config_rejects_nan_and_invalid_json(api):
    nan = api.http.post("/api/v1/observability/ratelimit/config", headers=JSON, body='{"name": "x", "refill_rate": NaN}')
    assert nan.status_code == 400 and "refill_rate" in nan.json_body["error"]
    assert api.http.post("/api/v1/observability/ratelimit/config", headers=JSON, body="{oops").status_code == 400


def test_delete_refuses_keys_that_are_not_limiter_config(api, r, cleanup):
    other = unique("session:")
    cleanup.append(other)
    r.set(other, "keep me")
    response = api.http.delete("/api/v1/observability/ratelimit/config", headers=JSON, body=json.dumps({"key": other}))
    assert response.status_code == 400 and "key" in response.json_body["error"]
    assert r.get(other) == "keep me"


@pytest.mark.parametrize(
    "query, field",
    [("", "name"), ("name=diagnosis&scope_type=tenant", "scope_type"), ("name=diagnosis&scope_type=cluster", "scope_id")],
)
def test_status_and_get_config_validate_the_query(api, query, field):
    for path in ("/api/v1/observability/ratelimit", "/api/v1/observability/ratelimit/config"):
        response = api.http.get(f"{path}?{query}")
        assert response.status_code == 400 and field in response.json_body["error"]


def test_observability_routes_answer_503_not_500_when_redis_is_down(api, monkeypatch):
    dead = LimiterManager(quick_client(free_port()))
    monkeypatch.setattr("chalicelib.api.observability.get_limiter_manager", lambda: dead)
    assert api.http.get("/api/v1/observability/ratelimit?name=diagnosis").status_code == 503
    assert api.http.get("/api/v1/observability/ratelimit/config/list").status_code == 503
    assert post_config(api, name="diagnosis", capacity=3).status_code == 503


def test_redis_bucket_lowered_capacity_applies_at_once_and_a_clock_stepping_back_does_not_stall_it(r, cleanup):
    key = bucket_key(unique(), "global")
    cleanup.append(key)
    RedisTokenBucket(r, key, refill_rate=1, capacity=10).allow()
    assert RedisTokenBucket(r, key, refill_rate=1, capacity=3).available() == 3
    # State written by a server whose clock ran an hour ahead (e.g. before a failover).
    r.hset(key, mapping={"tokens": 0, "ts": (r.time()[0] + 3600) * 1_000_000})
    bucket = RedisTokenBucket(r, key, refill_rate=100, capacity=10)
    assert not bucket.allow().allowed
    time.sleep(0.05)
    assert bucket.allow().allowed  # refill restarted from the server's present, not an hour later


def test_registering_the_middleware_and_routes_does_not_load_redis_or_prometheus():
    # app.py is imported by every function; only the one serving HTTP should pay for these.
    code = ("import sys, chalicelib.ratelimit.middleware, chalicelib.api.observability; "
            "print(sorted({'redis', 'prometheus_client'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(pathlib.Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_config_override_survives_redis_losing_it(api, r, cleanup):
    """Issue 17: overrides live in MariaDB; Redis, which lost them (a restart without persistence, a
    failover), gets them back on the next read instead of silently applying the defaults."""
    from chalicelib.ratelimit.config import Scope, config_key
    from chalicelib.ratelimit.config_store import LOADED_KEY, ConfigStore
    from chalicelib.repositories.limiter_overrides import LimiterOverrideRepository

    name = unique()
    key = config_key(name, Scope.parse("user:alice"))
    cleanup.append(key)
    response = post_config(api, name=name, scope_type="user", scope_id="alice", refill_rate=2.5, capacity=7)
    assert response.status_code == 200, response.body
    [row] = [o for o in LimiterOverrideRepository().all() if o["config_key"] == key]
    assert (row["refill_rate"], row["capacity"]) == (2.5, 7)
    r.delete(key, LOADED_KEY)  # Redis lost its data
    resolved = ConfigStore(r).resolve(name, Scope.parse("user:alice"))
    assert (resolved.refill_rate, resolved.capacity) == (2.5, 7)
    assert r.hgetall(key) == {"refill_rate": "2.5", "capacity": "7"} and r.exists(LOADED_KEY)
    assert ConfigStore(r).delete(key) is True
    assert [o for o in LimiterOverrideRepository().all() if o["config_key"] == key] == []


def test_a_config_write_refused_by_redis_leaves_no_durable_override(api, monkeypatch):
    from chalicelib.ratelimit.config import GLOBAL, config_key
    from chalicelib.repositories.limiter_overrides import LimiterOverrideRepository

    name = unique()
    dead = LimiterManager(quick_client(free_port()))
    monkeypatch.setattr("chalicelib.api.observability.get_limiter_manager", lambda: dead)
    assert post_config(api, name=name, capacity=3).status_code == 503
    assert config_key(name, GLOBAL) not in {o["config_key"] for o in LimiterOverrideRepository().all()}
