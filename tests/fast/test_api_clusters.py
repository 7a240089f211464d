"""Clusters over the real database: the v1 envelopes, validation at the edge, optimistic concurrency."""
from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest

from chalicelib import db
from chalicelib.repositories import ClusterRepository, MetricRepository
from chalicelib.models import UpdateClusterRequest
from chalicelib.services.clusters import ClusterService

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_create_get_list_update_delete_cluster(client):
    created = client.post("/api/v1/clusters", {"name": "  web  ", "region": "nyc3"})
    assert created.status_code == 201
    assert set(created.json) == {"cluster", "message"}
    cluster = created.json["cluster"]
    assert re.fullmatch(f"cluster-{UUID}", cluster["id"])
    assert cluster["name"] == "web"  # stripped
    assert cluster["region"] == "nyc3" and cluster["status"] == "healthy" and cluster["droplets"] == []
    assert ISO_Z.match(cluster["created_at"]) and ISO_Z.match(cluster["updated_at"])

    got = client.get(f"/api/v1/clusters/{cluster['id']}")
    assert got.status_code == 200 and got.json == {"cluster": cluster, "message": "Cluster retrieved"}

    listed = client.get("/api/v1/clusters")
    assert listed.status_code == 200 and listed.json == {"clusters": [cluster]}

    updated = client.put(f"/api/v1/clusters/{cluster['id']}", {"name": "api", "status": "warning"})
    assert updated.status_code == 200
    assert updated.json["cluster"]["name"] == "api" and updated.json["cluster"]["status"] == "warning"
    assert updated.json["cluster"]["region"] == "nyc3"
    assert updated.json["cluster"]["version"] == cluster["version"] + 1

    deleted = client.delete(f"/api/v1/clusters/{cluster['id']}")
    assert deleted.status_code == 200 and set(deleted.json) == {"message"}
    assert client.get(f"/api/v1/clusters/{cluster['id']}").status_code == 404


def test_ids_never_collide(client):
    ids = {client.post("/api/v1/clusters", {"name": "same", "region": "nyc1"}).json["cluster"]["id"] for _ in range(20)}
    assert len(ids) == 20


def test_cluster_droplets_come_from_the_droplets_table(client, make_cluster):
    cluster = make_cluster()
    droplet_ids = [
        client.post("/api/v1/droplets", {"name": f"d{i}", "region": "nyc3", "size": "s-1vcpu-1gb",
                                         "image": "ubuntu-22-04-x64", "cluster_id": cluster["id"]}).json["droplet"]["id"]
        for i in range(3)
    ]
    assert client.get(f"/api/v1/clusters/{cluster['id']}").json["cluster"]["droplets"] == droplet_ids
    client.delete(f"/api/v1/droplets/{droplet_ids[1]}")
    assert client.get(f"/api/v1/clusters/{cluster['id']}").json["cluster"]["droplets"] == [droplet_ids[0], droplet_ids[2]]
    assert client.get("/api/v1/clusters").json["clusters"][0]["droplets"] == [droplet_ids[0], droplet_ids[2]]


def test_delete_cascades_to_droplets_jobs_and_metrics(client, make_cluster, job_queue):
    doomed, kept = make_cluster("doomed"), make_cluster("kept")
    for cluster in (doomed, kept):
        client.post("/api/v1/droplets", {"name": "d", "region": "nyc3", "size": "s-1vcpu-1gb",
                                         "image": "ubuntu-22-04-x64", "cluster_id": cluster["id"]})
        assert client.post("/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster["id"]}},
                           headers={"X-User-ID": cluster["id"]}).status_code == 201
        MetricRepository().record(cluster_id=cluster["id"], metric_type="cpu", value=10.0, unit="%",
                                  timestamp=dt.datetime(2024, 1, 1))
    assert client.delete(f"/api/v1/clusters/{doomed['id']}").status_code == 200
    for table in ("droplets", "jobs", "metrics"):
        rows = db.query(f"SELECT cluster_id FROM {table}")
        assert {r["cluster_id"] for r in rows} == {kept["id"]}, table


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"name": "x", "region": "nyc3", "owner": "me"}, "owner", 400),         # unknown field
        ({"name": 42, "region": "nyc3"}, "name", 400),                          # wrong type
        ({"name": "x", "region": ["nyc3"]}, "region", 400),                     # wrong type
        ({"name": "", "region": "nyc3"}, "name", 400),                          # empty
        ({"name": "   ", "region": "nyc3"}, "name", 400),                       # blank
        ({"name": "n" * 256, "region": "nyc3"}, "name", 400),                   # too long
        ({"name": "x", "region": "mars1"}, "region", 400),                      # unknown region
        ({"region": "nyc3"}, "name", 400),                                      # missing
        ({"name": "x"}, "region", 400),
    ],
)
def test_create_cluster_rejects_bad_input(client, snapshot, make_cluster, body, field, status):
    make_cluster("existing")
    before = snapshot()
    response = client.post("/api/v1/clusters", body)
    assert response.status_code == status
    assert set(response.json) == {"error"} and field in response.json["error"]
    assert snapshot() == before


def test_name_of_exactly_255_characters_is_accepted(client):
    assert client.post("/api/v1/clusters", {"name": "n" * 255, "region": "nyc3"}).status_code == 201


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"name": "x", "region": ', "JSON"),
        (b"not json at all", "JSON"),
        (b"[1, 2]", "object"),
        (b"", "object"),
        (b'"just a string"', "object"),
    ],
)
def test_create_cluster_rejects_malformed_bodies(client, snapshot, raw, needle):
    before = snapshot()
    response = client.post("/api/v1/clusters", raw=raw)
    assert response.status_code == 400 and needle in response.json["error"]
    assert snapshot() == before


def test_oversized_body_is_refused_before_parsing(client, snapshot):
    before = snapshot()
    response = client.post("/api/v1/clusters", raw=b'{"name": "' + b"x" * 70_000 + b'", "region": "nyc3"}')
    assert response.status_code == 413 and "exceeds" in response.json["error"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "at least one of name, region, status"),
        ({"status": "exploded"}, "status"),
        ({"region": "atlantis"}, "region"),
        ({"name": ""}, "name"),
        ({"name": "ok", "droplets": []}, "droplets"),
        ({"name": "ok", "version": "1"}, "version"),
        ({"name": "ok", "version": 0}, "version"),
    ],
)
def test_update_cluster_rejects_bad_input(client, snapshot, make_cluster, body, field):
    cluster = make_cluster()
    before = snapshot()
    response = client.put(f"/api/v1/clusters/{cluster['id']}", body)
    assert response.status_code == 400 and field in response.json["error"]
    assert snapshot() == before


def test_missing_clusters_are_404(client, snapshot, make_cluster):
    make_cluster()
    before = snapshot()
    for method, body in (("GET", None), ("PUT", {"name": "x"}), ("DELETE", None)):
        response = client.request(method, "/api/v1/clusters/cluster-nope", body)
        assert response.status_code == 404 and response.json == {"error": "Cluster not found"}, method
    assert snapshot() == before


def test_update_with_a_stale_version_is_409_and_changes_nothing(client, snapshot, make_cluster):
    cluster = make_cluster()
    assert client.put(f"/api/v1/clusters/{cluster['id']}", {"name": "first", "version": 1}).status_code == 200
    before = snapshot()
    stale = client.put(f"/api/v1/clusters/{cluster['id']}", {"name": "second", "version": 1})
    assert stale.status_code == 409 and "modified concurrently" in stale.json["error"]
    assert snapshot() == before
    assert client.get(f"/api/v1/clusters/{cluster['id']}").json["cluster"]["name"] == "first"


def test_concurrent_updates_one_wins_one_gets_409(client, make_cluster):
    """Two writers read version 1 and race; exactly one update lands."""
    cluster = make_cluster()
    service = ClusterService()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def writer(name: str) -> None:
        barrier.wait()
        try:
            service.update(cluster["id"], UpdateClusterRequest(name=name, version=1))
            outcomes.append("won")
        except Exception as exc:  # noqa: BLE001 - we record which error it was
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ConflictError", "won"]
    assert client.get(f"/api/v1/clusters/{cluster['id']}").json["cluster"]["version"] == 2


def test_a_writer_on_another_connection_makes_the_api_update_409(client, make_cluster):
    """A second process (its own pymysql connection) commits between our read and our write."""
    cluster = make_cluster()
    repo = ClusterRepository()
    read = repo.get(cluster["id"])  # we read version 1 ...
    other = db.connect()  # ... another writer with its own connection wins the race ...
    try:
        with other.cursor() as cur:
            cur.execute("UPDATE clusters SET name = 'other', version = version + 1 WHERE id = %s AND version = %s",
                        (cluster["id"], read["version"]))
            assert cur.rowcount == 1
        other.commit()
    finally:
        other.close()
    # ... so our compare-and-set on the version we read loses, over HTTP too.
    response = client.put(f"/api/v1/clusters/{cluster['id']}", {"name": "ours", "version": read["version"]})
    assert response.status_code == 409
    assert client.get(f"/api/v1/clusters/{cluster['id']}").json["cluster"]["name"] == "other"


def test_unexpected_exception_is_500_with_request_id_and_no_trace(client, monkeypatch):
    from chalicelib.api import clusters

    def boom(**_):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(clusters.service, "page", boom)
    response = client.get("/api/v1/clusters")
    assert response.status_code == 500
    assert set(response.json) == {"error", "request_id"} and response.json["request_id"]
    assert "hunter2" not in response.body.decode() and "Traceback" not in response.body.decode()


def test_a_dropped_database_connection_is_reconnected(client, make_cluster):
    cluster = make_cluster()
    victim = db.get_connection().thread_id()
    killer = db.connect()
    try:
        with killer.cursor() as cur:
            cur.execute("KILL %s", (victim,))
    finally:
        killer.close()
    wait_until_gone(victim)
    response = client.get(f"/api/v1/clusters/{cluster['id']}")
    assert response.status_code == 200 and response.json["cluster"]["id"] == cluster["id"]
    assert db.get_connection().thread_id() != victim


def wait_until_gone(thread_id: int, timeout: float = 5.0) -> None:
    # KILL returns before the server has closed the victim's socket; the drop is what we test.
    observer = db.connect()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with observer.cursor() as cur:
                cur.execute("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = %s", (thread_id,))
                if cur.fetchone()["n"] == 0:
                    return
            observer.commit()
            time.sleep(0.01)
        raise AssertionError(f"connection {thread_id} still alive after KILL")
    finally:
        observer.close()


def test_an_idle_connection_is_pinged_and_replaced_when_dead(client, make_cluster, monkeypatch):
    cluster = make_cluster()
    conn = db.get_connection()
    victim = conn.thread_id()
    # A link that died silently: the socket looks quiet, only a ping can tell.
    monkeypatch.setattr(db, "_closed_by_server", lambda c: False)
    killer = db.connect()
    try:
        with killer.cursor() as cur:
            cur.execute("KILL %s", (victim,))
    finally:
        killer.close()
    wait_until_gone(victim)
    monkeypatch.setattr(db, "_last_used", time.monotonic() - db.IDLE_PING_SECONDS - 1)
    assert client.get(f"/api/v1/clusters/{cluster['id']}").status_code == 200
    assert db.get_connection().thread_id() != victim
