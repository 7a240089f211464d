"""The probes of issue 18 (bounded and hardened), each as a test that failed before the fix.

Every test here talks to the real MariaDB, Redis and (where it says so) Kafka through the real app.
"""
from __future__ import annotations

import json

import pytest

from chalicelib.json_limits import decode_json, structure_of
from chalicelib.errors import ValidationError
from chalicelib.settings import get_settings

# Every POST route of the v1 API (with a path parameter filled in where it has one).
POST_ROUTES = (
    "/api/v1/clusters", "/api/v1/droplets", "/api/v1/jobs", "/api/v1/diagnosis/diagnose",
    "/api/v1/autoscaling/policies", "/api/v1/autoscaling/evaluate", "/api/v1/observability/ratelimit/config",
    "/api/v1/providers", "/api/v1/schedule", "/api/v1/migrations", "/api/v1/hello", "/api/v1/deployments/start",
)


# --- input limits -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", POST_ROUTES)
def test_deeply_nested_json_is_a_400_on_every_post_route(client, path):
    deep = '{"cluster_id": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post(path, raw=deep)
    assert response.status_code == 400, (path, response.body)
    if path != "/api/v1/autoscaling/evaluate":  # the one POST route that reads no body (its query is missing)
        assert response.json == {"error": f"request body nests deeper than {get_settings().max_json_depth} levels"}


def test_a_body_with_too_many_keys_is_a_400(client):
    many = json.dumps({"name": "web", "region": "nyc3", **{f"k{i}": 1 for i in range(get_settings().max_json_keys)}})
    response = client.post("/api/v1/clusters", raw=many)
    assert response.status_code == 400
    assert response.json == {"error": f"request body has more than {get_settings().max_json_keys} keys"}


def test_error_replies_echo_only_a_short_excerpt_of_the_input(client):
    # 60 KB of unknown keys (under the key limit) each named in pydantic's errors: the reply stays short.
    body = {"name": "web", "region": "nyc3", **{("x" * 120) + str(i): 1 for i in range(400)}}
    raw = json.dumps(body)
    assert len(raw) > 48_000
    response = client.post("/api/v1/clusters", raw=raw)
    assert response.status_code == 400
    assert len(response.body) < 600, len(response.body)
    assert "unknown field" in response.json["error"]
    long_id = "c" * 60_000
    response = client.get(f"/api/v1/clusters/{long_id}")
    assert response.status_code in (400, 404) and len(response.body) < 600


def test_structure_is_measured_outside_string_literals():
    assert structure_of('{"a": "[[[{{{:::", "b": [1, {"c": "\\"]"}]}') == (3, 3)
    assert decode_json(b'{"a": [[1]]}', max_depth=3, max_keys=1) == {"a": [[1]]}
    with pytest.raises(ValidationError):
        decode_json(b'{"a": [[[1]]]}', max_depth=3, max_keys=5)
    with pytest.raises(ValidationError):
        decode_json(b'{"a": 1, "b": 2}', max_depth=3, max_keys=1)
    with pytest.raises(ValidationError):
        decode_json(b"\xff\xfe", max_depth=3, max_keys=1)


# --- exact ids ------------------------------------------------------------------------------------------------

def test_case_variants_of_an_id_are_other_ids(client, make_cluster):
    cluster = make_cluster()
    variant = cluster["id"].upper()
    assert variant != cluster["id"]
    assert client.get(f"/api/v1/clusters/{variant}").status_code == 404
    assert client.get(f"/api/v1/clusters/{cluster['id']}").status_code == 200
    assert client.post("/api/v1/diagnosis/diagnose", {"cluster_id": variant}).status_code in (404, 500)


def test_a_droplet_cannot_be_stored_under_a_case_variant_of_its_cluster_and_listing_stays_whole(client, make_cluster):
    import pymysql

    from chalicelib import db

    cluster = make_cluster()
    with pytest.raises(pymysql.err.IntegrityError):  # the foreign key compares byte for byte
        with db.transaction() as cur:
            cur.execute("INSERT INTO droplets (id, cluster_id, name, region, size, image) "
                        "VALUES ('droplet-variant', %s, 'd', 'nyc3', 's', 'i')", (cluster["id"].upper(),))
    listed = client.get("/api/v1/clusters")
    assert listed.status_code == 200 and [c["id"] for c in listed.json["clusters"]] == [cluster["id"]]


def test_every_id_column_compares_byte_for_byte(mariadb):
    from chalicelib import db

    rows = db.query("SELECT table_name AS t, column_name AS c, collation_name AS coll FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND data_type = 'varchar' AND table_name NOT LIKE '\\_yoyo%%' "
                    "AND (column_name = 'id' OR column_name LIKE '%%\\_id')")
    assert rows
    assert [r for r in rows if r["coll"] != "utf8mb4_bin"] == []


# --- pagination -----------------------------------------------------------------------------------------------

def _insert_clusters(n: int, droplets_each: int = 0) -> None:
    from chalicelib import db

    with db.transaction() as cur:
        cur.execute("INSERT INTO clusters (id, name, region) SELECT CONCAT('c-', LPAD(seq, 6, '0')), "
                    f"CONCAT('cluster number ', seq), 'nyc3' FROM seq_0_to_{n - 1}")
        if droplets_each:
            cur.execute("INSERT INTO droplets (id, cluster_id, name, region, size, image, status) "
                        f"SELECT CONCAT('d-', seq), CONCAT('c-', LPAD(seq DIV {droplets_each}, 6, '0')), 'd', 'nyc3', "
                        f"'s-1vcpu-1gb', 'ubuntu', 'active' FROM seq_0_to_{n * droplets_each - 1}")


LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024


def test_30k_clusters_list_in_pages_under_lambdas_payload_limit(client):
    _insert_clusters(30_000)
    first = client.get("/api/v1/clusters")
    assert first.status_code == 200 and len(first.body) < LAMBDA_PAYLOAD_LIMIT
    assert set(first.json) == {"clusters"} and len(first.json["clusters"]) == 100
    assert first.headers["X-Total-Count"] == "30000"
    assert first.headers["Link"] == '</api/v1/clusters?page=2&page_size=100>; rel="next"'
    biggest = client.get("/api/v1/clusters?page_size=100000")  # clamped to the maximum
    assert len(biggest.json["clusters"]) == 500 and len(biggest.body) < LAMBDA_PAYLOAD_LIMIT
    last = client.get("/api/v1/clusters?page=60&page_size=500")
    assert [c["id"] for c in last.json["clusters"]][-1] == "c-029999"
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    seen = [c["id"] for c in client.get("/api/v1/clusters?page=2&page_size=3").json["clusters"]]
    assert seen == ["c-000003", "c-000004", "c-000005"]


def test_droplets_list_in_pages_with_their_clusters(client):
    _insert_clusters(300, droplets_each=2)
    page = client.get("/api/v1/droplets?page=2&page_size=250")
    assert page.status_code == 200 and len(page.json["droplets"]) == 250
    assert page.headers["X-Total-Count"] == "600"
    assert all(d["cluster"]["id"] == d["cluster_id"] for d in page.json["droplets"])
    of_one = client.get("/api/v1/droplets?cluster_id=c-000007")
    assert [d["id"] for d in of_one.json["droplets"]] == ["d-14", "d-15"] and of_one.headers["X-Total-Count"] == "2"
    assert "Link" not in of_one.headers


# --- quotas ---------------------------------------------------------------------------------------------------

def test_scale_beyond_the_replicas_quota_is_a_409_naming_the_limit_and_creates_nothing(client, make_cluster, snapshot):
    cluster = make_cluster()
    before = snapshot()
    response = client.post("/api/v1/jobs", {"type": "scale", "parameters": {
        "cluster_id": cluster["id"], "replicas": "1000", "max_replicas": "1000000000"}})
    assert response.status_code == 409
    assert response.json == {"error": f"quota exceeded: replicas limit of cluster {cluster['id']} is 50, "
                                      "this request needs 1000"}
    assert snapshot() == before


def test_quotas_are_read_and_set_per_cluster_and_per_tenant(client, make_cluster):
    cluster = make_cluster()
    got = client.get(f"/api/v1/quotas?cluster_id={cluster['id']}")
    assert got.status_code == 200 and got.json["scope"] == f"cluster:{cluster['id']}"
    assert got.json["limits"] == got.json["defaults"] and got.json["usage"]["droplets"] == 0
    put = client.put("/api/v1/quotas", {"cluster_id": cluster["id"], "limits": {"replicas": 2}})
    assert put.status_code == 200 and put.json["limits"]["replicas"] == 2
    refused = client.post("/api/v1/jobs", {"type": "scale", "parameters": {"cluster_id": cluster["id"], "replicas": "3"}})
    assert refused.status_code == 409 and "replicas limit of cluster" in refused.json["error"]
    assert client.post("/api/v1/jobs", {"type": "scale", "parameters": {"cluster_id": cluster["id"],
                                                                        "replicas": "2"}}).status_code == 201
    tenant = client.put("/api/v1/quotas", {"limits": {"droplets": 1}})
    assert tenant.status_code == 200 and tenant.json["scope"] == "tenant:default"
    try:
        body = {"name": "d", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-22-04-x64", "cluster_id": cluster["id"]}
        assert client.post("/api/v1/droplets", body).status_code == 201
        second = client.post("/api/v1/droplets", body)
        assert second.status_code == 409 and second.json["error"].startswith("quota exceeded: droplets limit of tenant default")
    finally:
        client.put("/api/v1/quotas", {"limits": {"droplets": 1000}})
    assert client.put("/api/v1/quotas", {"limits": {"bogus": 1}}).status_code == 400
    assert client.put("/api/v1/quotas", {"limits": {"droplets": -1}}).status_code == 400
    assert client.get("/api/v1/quotas?cluster_id=nope").status_code == 404


def test_the_one_read_of_a_quota_check_gives_what_the_separate_reads_give(client, make_cluster):
    """QuotaRepository.scopes (one statement, issue 16) against the stored limits and usage read one by one."""
    from chalicelib.repositories.quotas import QuotaRepository
    from chalicelib.services.quotas import COUNTED_JOB_TYPES

    quotas = QuotaRepository()
    cluster, other = make_cluster(), make_cluster()
    client.put("/api/v1/quotas", {"cluster_id": cluster["id"], "limits": {"replicas": 7, "droplets": 9}})
    client.put("/api/v1/quotas", {"limits": {"concurrent_jobs": 90}})
    try:
        for target, parameters in ((cluster, {}), (cluster, {"replicas": "2"}), (other, {})):
            job_type = "scale" if parameters else "provision"
            assert client.post("/api/v1/jobs", {"type": job_type, "parameters": {
                "cluster_id": target["id"], **parameters}}).status_code == 201
        body = {"name": "d", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-22-04-x64", "cluster_id": other["id"]}
        assert client.post("/api/v1/droplets", body).status_code == 201
        read = quotas.scopes(cluster["id"], "fallback", COUNTED_JOB_TYPES)
        assert read == {"tenant": "default",
                        "stored": {"cluster": quotas.stored("cluster", cluster["id"]),
                                   "tenant": quotas.stored("tenant", "default")},
                        "usage": {"cluster": quotas.cluster_usage(cluster["id"], COUNTED_JOB_TYPES),
                                  "tenant": quotas.tenant_usage("default", COUNTED_JOB_TYPES)}}
        assert read["stored"]["cluster"] == {"replicas": 7, "droplets": 9} and read["usage"]["cluster"]["concurrent_jobs"] == 2
        # three jobs posted, and the provision job of the droplet posted
        assert read["usage"]["tenant"]["concurrent_jobs"] == 4 and read["stored"]["tenant"]["concurrent_jobs"] == 90
        missing = quotas.scopes("cluster-missing", "fallback", COUNTED_JOB_TYPES)
        assert missing["tenant"] == "fallback" and missing["usage"]["cluster"] == {"droplets": 0, "concurrent_jobs": 0,
                                                                                 "deployments": 0}
    finally:
        client.put("/api/v1/quotas", {"limits": {"concurrent_jobs": 100}})


def test_the_runner_checks_the_quota_again(client, make_cluster, job_queue):
    from chalicelib.functions.job_worker import handle_batch  # noqa: F401 - the worker's own path below
    from chalicelib.services.job_runner import JobFailed, JobRun, scale
    from chalicelib.services.jobs import JobService

    cluster = make_cluster()
    job = JobService().submit("scale", cluster["id"], {"replicas": "5"})
    client.put("/api/v1/quotas", {"cluster_id": cluster["id"], "limits": {"replicas": 4}})  # lowered meanwhile
    run = JobRun(JobService().start(job), JobService(), None)
    with pytest.raises(JobFailed, match="quota exceeded: replicas limit of cluster"):
        scale(run)


# --- rate limits on every write route -------------------------------------------------------------------------

def test_every_write_route_has_a_rate_limit_entry():
    from app import app
    from chalicelib.ratelimit.routes import LIMITED_ROUTES

    writes = {(method, path) for path, methods in app.routes.items() for method, entry in methods.items()
              if method in ("POST", "PUT", "PATCH", "DELETE") and path.startswith("/api/v1/")
              and entry.view_function.__module__.startswith("chalicelib.api.")
              and entry.view_function.__module__ != "chalicelib.api.edge_routes"}  # not the 405 answers
    table = [(route.method, route.path) for route in LIMITED_ROUTES]
    assert len(table) == len(set(table))  # one entry per route
    assert writes - set(table) == set()


# --- idempotency keys -----------------------------------------------------------------------------------------

@pytest.fixture
def no_keys(mariadb):  # noqa: ANN001
    """Keys outlive the tables clean_db empties (they are kept 24 hours): each test starts without any."""
    from chalicelib import db

    with db.transaction() as cur:
        cur.execute("DELETE FROM idempotency_keys")


def test_the_same_idempotency_key_three_times_makes_one_cluster(client, no_keys):
    from chalicelib import db

    headers = {"Idempotency-Key": "create-web-1"}
    responses = [client.post("/api/v1/clusters", {"name": "web", "region": "nyc3"}, headers=headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert responses[0].json == responses[1].json == responses[2].json
    assert "Idempotent-Replayed" not in responses[0].headers
    assert responses[1].headers["Idempotent-Replayed"] == "true"
    assert db.query("SELECT COUNT(*) AS n FROM clusters")[0]["n"] == 1
    other = client.post("/api/v1/clusters", {"name": "api", "region": "nyc3"}, headers=headers)
    assert other.status_code == 422 and other.json == {"error": "Idempotency-Key was already used with a different request"}
    # keys are per caller, and without a key every create creates
    assert client.post("/api/v1/clusters", {"name": "web", "region": "nyc3"},
                       headers={**headers, "X-User-ID": "someone-else"}).status_code == 201
    assert client.post("/api/v1/clusters", {"name": "web", "region": "nyc3"}).status_code == 201
    assert db.query("SELECT COUNT(*) AS n FROM clusters")[0]["n"] == 3


def test_a_refused_create_is_replayed_and_a_bad_key_is_a_400(client, make_cluster, no_keys):
    cluster = make_cluster()
    body = {"type": "scale", "parameters": {"cluster_id": cluster["id"], "replicas": "1000"}}
    first = client.post("/api/v1/jobs", body, headers={"Idempotency-Key": "k-scale"})
    again = client.post("/api/v1/jobs", body, headers={"Idempotency-Key": "k-scale"})
    assert first.status_code == again.status_code == 409 and first.json == again.json
    assert client.post("/api/v1/clusters", {"name": "web", "region": "nyc3"},
                       headers={"Idempotency-Key": "x" * 256}).status_code == 400


def test_every_create_route_takes_an_idempotency_key():
    from app import app
    from chalicelib.idempotency import CREATE_ROUTES, NEVER_REPLAYED

    routes = {(method, path) for path, methods in app.routes.items() for method in methods}
    assert CREATE_ROUTES <= routes
    created_201 = {(op.method, op.path) for op in __import__("chalicelib.api.openapi", fromlist=["x"]).operations()
                   if op.status == 201}
    assert created_201 - NEVER_REPLAYED <= CREATE_ROUTES and not NEVER_REPLAYED & CREATE_ROUTES


# --- labels and logs ------------------------------------------------------------------------------------------

def test_job_log_lines_hide_other_callers_and_function_arns():
    from chalicelib.logs.redaction import HIDDEN, for_viewer

    line = {"message": "job queued", "caller": "alice", "function_arn":
            "arn:aws:lambda:us-east-1:000000000000:function:cg-api", "nested": {"caller": "bob", "user_id": "alice"},
            "error": "AccessDenied for arn:aws:iam::000000000000:role/cg-worker on x"}
    as_bob = for_viewer(line, "bob")
    assert "function_arn" not in as_bob and as_bob["caller"] == HIDDEN and as_bob["nested"]["caller"] == "bob"
    assert as_bob["nested"]["user_id"] == HIDDEN and "arn:aws" not in as_bob["error"]
    assert for_viewer(line, "alice")["caller"] == "alice"


def test_job_logs_route_shows_lines_through_the_redaction(client, make_cluster):
    from chalicelib import db

    cluster = make_cluster()
    job = client.post("/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster["id"]}},
                      headers={"X-User-ID": "alice"}).json["job"]
    # With identity (issue 13) a caller is its principal: the key that SignedHttp gives the name "alice".
    alice = client.get("/api/v1/auth/whoami", headers={"X-User-ID": "alice"}).json["principal"]
    record = json.dumps({"message": "job queued", "caller": alice, "job_id": job["id"],
                         "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:cg-api"})
    with db.transaction() as cur:
        cur.execute("INSERT INTO log_lines (source, ts, level, job_id, message, line) VALUES "
                    "(%s, UTC_TIMESTAMP(6), 'INFO', %s, 'job queued', %s)", (f"test:{job['id']}", job["id"], record))
    try:
        as_bob = client.get(f"/api/v1/jobs/{job['id']}/logs", headers={"X-User-ID": "bob"}).json["lines"]
        assert as_bob and alice not in json.dumps(as_bob) and "arn:aws:lambda" not in json.dumps(as_bob)
        as_alice = client.get(f"/api/v1/jobs/{job['id']}/logs", headers={"X-User-ID": "alice"}).json["lines"]
        assert as_alice[0]["line"]["caller"] == alice
    finally:
        with db.transaction() as cur:
            cur.execute("DELETE FROM log_lines WHERE source = %s", (f"test:{job['id']}",))


def test_metric_labels_come_from_bounded_sets(redis_server):
    from chalicelib import metrics
    from chalicelib.metrics import exposition
    from chalicelib.redis_client import get_redis

    metrics.observe_http("EVIL<script>", "/api/v1/clusters", 405, 0.001)
    metrics.flush()
    text = exposition.render([exposition.AggregatedCollector(get_redis())]).decode()
    assert "EVIL" not in text and 'method="OTHER"' in text


# --- the provider catalogue -----------------------------------------------------------------------------------

def test_providers_need_a_positive_price_and_can_be_deleted(client):
    body = {"name": "cheapo", "regions": ["nyc3"], "capacity": 10, "classes": ["s-1vcpu-1gb"]}
    for price in (0, -1):
        refused = client.post("/api/v1/providers", {**body, "price_per_hour": price})
        assert refused.status_code == 400 and "price_per_hour" in refused.json["error"]
    assert client.post("/api/v1/providers", {**body, "price_per_hour": 0.01}).status_code == 201
    try:
        from chalicelib import db

        with db.transaction() as cur:
            cur.execute("INSERT INTO clusters (id, name, region) VALUES ('c-prov', 'p', 'nyc3')")
            cur.execute("INSERT INTO droplets (id, cluster_id, name, region, size, image, provider, status) "
                        "VALUES ('d-prov', 'c-prov', 'd', 'nyc3', 's-1vcpu-1gb', 'i', 'cheapo', 'active')")
        busy = client.delete("/api/v1/providers/cheapo")
        assert busy.status_code == 409 and "still has droplets" in busy.json["error"]
        with db.transaction() as cur:
            cur.execute("DELETE FROM droplets WHERE id = 'd-prov'")
        assert client.delete("/api/v1/providers/cheapo").status_code == 200
        assert "cheapo" not in [p["name"] for p in client.get("/api/v1/providers").json["items"]]
        assert client.delete("/api/v1/providers/cheapo").status_code == 404
    finally:
        client.delete("/api/v1/providers/cheapo")


# --- trusted events -------------------------------------------------------------------------------------------

def test_a_forged_event_is_dead_lettered_with_its_reason_and_counted(clean_db, redis_server, make_cluster):
    from chalicelib import metrics
    from chalicelib.event_pipeline import dead_letters as dl
    from chalicelib.event_pipeline.batch import get_batch_processor, reset_batch_processor
    from chalicelib.event_signing import HEADER
    from chalicelib.metrics import exposition
    from chalicelib.redis_client import get_redis
    from msk_events import envelope, kafka_record, msk_event

    cluster = make_cluster()
    sink = dl.InMemoryDeadLetters()
    dl._sink.set(sink)
    reset_batch_processor()
    metrics.reset_buffer()
    get_redis().delete(metrics.COUNTS_KEY, metrics.GAUGES_KEY)
    # Fixtures reuse offsets and Redis keeps its ledger across runs (AOF): start with an empty ledger.
    stale = list(get_redis().scan_iter("events:*", count=1000))
    if stale:
        get_redis().delete(*stale)
    try:
        phantom = envelope("droplet_created", cluster["id"], payload={"droplet": {"id": "droplet-phantom"}})
        critical = envelope("telemetry", cluster["id"], payload={"cpu": 99})
        forged = kafka_record(critical, 1, signed=False)
        tampered = kafka_record(phantom, 2)
        tampered = tampered._replace(value=tampered.value.replace(b"phantom", b"phantoN"))
        wrong_key = kafka_record(phantom, 3, signed=False)._replace(headers=[(HEADER, b"k=nope,v1=00")])
        result = get_batch_processor().process(msk_event([forged, tampered, wrong_key]))
        assert result == {"records": 3, "applied": 0, "duplicates": 0, "malformed": 3}
        assert [letter["reason"] for letter in sink.letters] == ["unsigned", "bad_signature", "bad_signature"]
        from chalicelib import db

        assert db.query("SELECT COUNT(*) AS n FROM metrics")[0]["n"] == 0
        assert db.query("SELECT COUNT(*) AS n FROM droplets")[0]["n"] == 0
        metrics.flush()
        text = exposition.render([exposition.AggregatedCollector(get_redis())]).decode()
        assert 'outcome="malformed",reason="unsigned"' in text.replace(", ", ",")
        # the same telemetry, signed by the app, is applied
        assert get_batch_processor().process(msk_event([kafka_record(critical, 4)]))["applied"] == 1
    finally:
        dl._sink.set(None)
        reset_batch_processor()


def test_signatures_verify_against_the_current_and_previous_key(monkeypatch):
    import json as _json

    from chalicelib import event_signing
    from chalicelib.settings import reset_settings

    first = event_signing.new_key_document()
    monkeypatch.setenv("CG_EVENT_SIGNING_KEYS", first)
    monkeypatch.delenv("CG_EVENT_SIGNING_SECRET_ID", raising=False)
    reset_settings()
    event_signing.forget_keys()
    try:
        old_signature = event_signing.sign(b"value")
        assert event_signing.untrusted_reason(b"value", old_signature) is None
        rotated = event_signing.new_key_document(previous=_json.loads(first)["current"])
        monkeypatch.setenv("CG_EVENT_SIGNING_KEYS", rotated)
        reset_settings()
        event_signing.forget_keys()
        assert event_signing.untrusted_reason(b"value", old_signature) is None  # the previous key still verifies
        assert event_signing.sign(b"value") != old_signature
        assert event_signing.untrusted_reason(b"other", old_signature) == "bad_signature"
        assert event_signing.untrusted_reason(b"value", None) == "unsigned"
        monkeypatch.setenv("CG_EVENT_SIGNING_KEYS", event_signing.new_key_document(previous=_json.loads(rotated)["current"]))
        reset_settings()
        event_signing.forget_keys()
        assert event_signing.untrusted_reason(b"value", old_signature) == "bad_signature"  # two rotations on: gone
    finally:
        monkeypatch.undo()
        reset_settings()
        event_signing.forget_keys()


@pytest.mark.pure
def test_the_signature_is_standard_hmac_sha256_for_any_key_and_value():
    """`_mac` copies an HMAC-SHA256 prepared once per key (issue 16: OpenSSL 3's one-shot HMAC is slower);
    a producer or verifier elsewhere computes it with any HMAC library, so it must be the standard one."""
    import hmac as _hmac
    import os as _os

    from chalicelib.event_signing import _mac

    for key in (b"", b"k", _os.urandom(32), _os.urandom(64), _os.urandom(65), _os.urandom(200)):
        for value in (b"", b"value", _os.urandom(1000)):
            assert _mac(key, value) == _hmac.digest(key, value, "sha256").hex()
            assert _mac(key, value) == _mac(key, value)  # the cached HMAC is copied, never consumed
