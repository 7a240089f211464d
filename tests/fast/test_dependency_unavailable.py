"""A dependency unreachable during a request is a 503 with Retry-After and the v1 envelope, never a 500;
GET /metrics serves what it has and says which source did not answer (issue 17).

"Unreachable" is real: the settings point the app at a port nothing listens on (connection refused),
exactly what a stopped MariaDB or Redis looks like to the client libraries.
"""
from __future__ import annotations

import pytest

from chalicelib import db, metrics
from chalicelib.dependencies import as_unavailable
from chalicelib.errors import DependencyUnavailableError
from chalicelib.settings import reset_settings

from private_redis import free_port


@pytest.fixture
def mariadb_down(client, monkeypatch):  # noqa: ANN001 - the app is built (and its tables cleaned) first
    monkeypatch.setenv("CG_DB_PORT", str(free_port()))
    reset_settings()
    db.reset_connection()
    yield
    monkeypatch.undo()
    reset_settings()
    db.reset_connection()


@pytest.fixture
def redis_down(client, monkeypatch):  # noqa: ANN001
    from chalicelib import redis_client

    monkeypatch.setenv("CG_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    redis_client._client.set(None)
    yield
    monkeypatch.undo()
    reset_settings()
    redis_client._client.set(None)


def _assert_503(response, source: str) -> None:  # noqa: ANN001
    assert response.status_code == 503, response.body
    assert response.headers["Retry-After"].isdigit() and int(response.headers["Retry-After"]) > 0
    assert response.json == {"error": f"{source} unavailable; retry later"}


def test_reads_and_writes_without_mariadb_are_503(client, mariadb_down):  # noqa: ANN001
    from chalicelib.redis_client import get_redis

    key = metrics.field(metrics.DEPENDENCY_UNAVAILABLE.name, "", ("mariadb",))
    before = int(get_redis().hget(metrics.COUNTS_KEY, key) or 0)
    _assert_503(client.get("/api/v1/clusters"), "mariadb")
    _assert_503(client.post("/api/v1/clusters", {"name": "web", "region": "nyc3"}), "mariadb")
    _assert_503(client.get("/api/v1/jobs/job-x"), "mariadb")
    metrics.flush()  # each invocation flushed already; this instance's remainder too
    assert int(get_redis().hget(metrics.COUNTS_KEY, key) or 0) - before == 3


def test_mariadb_back_answers_again(client, make_cluster, monkeypatch):  # noqa: ANN001
    cluster = make_cluster()
    monkeypatch.setenv("CG_DB_PORT", str(free_port()))
    reset_settings()
    db.reset_connection()
    _assert_503(client.get(f"/api/v1/clusters/{cluster['id']}"), "mariadb")
    monkeypatch.undo()
    reset_settings()  # the server is "back": the next request reconnects by itself
    assert client.get(f"/api/v1/clusters/{cluster['id']}").status_code == 200


def test_a_redis_read_without_redis_is_503(client, make_cluster, request):  # noqa: ANN001
    from chalicelib.repositories import JobRepository

    # A job of the caller's tenant: the route finds it in MariaDB (an unknown id is a 404 before Redis).
    cluster = make_cluster()
    job = JobRepository().create(job_type="monitor", cluster_id=cluster["id"],
                                 parameters={"cluster_id": cluster["id"]}, trace_id="trace-redis-down")
    request.getfixturevalue("redis_down")
    _assert_503(client.get(f"/api/v1/jobs/{job['id']}/event-state"), "redis")


@pytest.mark.parametrize("down,up,served", [
    ("redis", "mariadb", 'clustergenie_jobs{status="queued"}'),  # the database's readings
    ("mariadb", "redis", "clustergenie_http_requests_total"),    # the aggregates kept in Redis
], ids=["without-redis", "without-mariadb"])
def test_metrics_page_without_one_source_serves_the_other(client, request, down, up, served):  # noqa: ANN001
    request.getfixturevalue(f"{down}_down")
    response = client.http.request("GET", "/metrics")
    assert response.status_code == 200
    text = response.body.decode()
    assert f'clustergenie_metrics_source_up{{source="{down}"}} 0.0' in text
    assert f'clustergenie_metrics_source_up{{source="{up}"}} 1.0' in text
    assert served in text


def test_the_classifier_names_the_source_and_ignores_the_rest():
    import redis

    assert as_unavailable(redis.ConnectionError("refused")).source == "redis"
    assert as_unavailable(redis.TimeoutError("slow")).source == "redis"
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = redis.ConnectionError("inner")
    assert as_unavailable(wrapped).source == "redis"
    assert as_unavailable(ValueError("bad input")) is None
    assert as_unavailable(redis.ResponseError("WRONGTYPE")) is None
    err = DependencyUnavailableError("mariadb")
    assert as_unavailable(err) is err


def test_the_classifier_knows_kafka_and_aws_errors_and_imports_no_client_to_tell():
    import botocore.exceptions
    import kafka.errors

    assert as_unavailable(kafka.errors.KafkaTimeoutError()).source == "kafka"
    assert as_unavailable(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x")).source == "aws"
    # In a fresh interpreter that loaded none of the clients, classifying an error loads none of them.
    import json
    import pathlib
    import subprocess
    import sys

    code = ("import json, sys\nfrom chalicelib.dependencies import is_outage\nis_outage(ValueError('x'))\n"
            "print(json.dumps([m for m in ('redis', 'kafka', 'botocore') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=pathlib.Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
