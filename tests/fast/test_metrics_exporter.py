"""metrics_exporter against the real MariaDB test database and the real Pushgateway."""
from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chalicelib import db, metrics
from chalicelib.functions import metrics_exporter
from chalicelib.repositories.metrics import LATEST_SQL


@pytest.fixture
def exporter(clean_db, fresh_rate_limits, monkeypatch):  # noqa: ANN001
    """The exporter pushing into a group of its own, deleted afterwards (the dev stack's group is left alone)."""
    from chalicelib.redis_client import get_redis

    monkeypatch.setattr(metrics_exporter, "GROUPING_KEY", {"instance": "fast-test-obs"})
    metrics.reset_buffer()
    get_redis().delete(metrics.COUNTS_KEY, metrics.GAUGES_KEY)
    yield metrics_exporter
    url = f"{metrics_exporter.get_settings().pushgateway_url}/metrics/job/{metrics_exporter.PUSH_JOB}/instance/fast-test-obs"
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE", headers=_auth()), timeout=5).close()


def _auth() -> dict[str, str]:
    """The Pushgateway requires basic auth (issue 18): the same credentials the exporter pushes with."""
    return metrics_exporter.pushgateway_auth(metrics_exporter.get_settings())


def pushed() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"{metrics_exporter.get_settings().pushgateway_url}/metrics"
    with urllib.request.urlopen(urllib.request.Request(url, headers=_auth()), timeout=5) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("job", "instance")))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.labels.get("instance") == "fast-test-obs"}


def add_cluster(cluster_id: str, samples: dict[str, list[float]], droplets: dict[str, int]) -> None:
    with db.transaction() as cur:
        cur.execute("INSERT INTO clusters (id, name, region) VALUES (%s, %s, 'nyc3')", (cluster_id, cluster_id + "-name"))
        for metric_type, values in samples.items():
            for i, value in enumerate(values):  # the last one is the newest
                cur.execute("INSERT INTO metrics (cluster_id, type, value, unit, timestamp) VALUES "
                            "(%s, %s, %s, '%%', UTC_TIMESTAMP(6) - INTERVAL %s SECOND)",
                            (cluster_id, metric_type, value, len(values) - i))
        n = 0
        for status, count in droplets.items():
            for _ in range(count):
                n += 1
                cur.execute("INSERT INTO droplets (id, cluster_id, name, region, size, image, status) "
                            "VALUES (%s, %s, 'd', 'nyc3', 's', 'i', %s)", (f"{cluster_id}-d{n}", cluster_id, status))


def test_latest_value_health_and_droplets_are_pushed_and_deleted_clusters_disappear(exporter):
    add_cluster("c-hot", {"cpu": [10.0, 95.0], "memory": [99.0, 20.0]}, {"active": 2, "provisioning": 1})
    add_cluster("c-quiet", {}, {})
    result = exporter.export()
    assert result["pushed"] is True and result["clusters"] == 2
    got = pushed()
    assert got[("clustergenie_cluster_metric", (("cluster_id", "c-hot"),
                                                ("type", "cpu"), ("unit", "%")))] == 95.0
    assert got[("clustergenie_cluster_metric", (("cluster_id", "c-hot"),
                                                ("type", "memory"), ("unit", "%")))] == 20.0
    assert got[("clustergenie_cluster_health", (("cluster_id", "c-hot"),
                                                ("status", "warning")))] == 1
    assert got[("clustergenie_cluster_health", (("cluster_id", "c-quiet"),
                                                ("status", "unknown")))] == 1
    assert got[("clustergenie_cluster_droplets", (("cluster_id", "c-hot"), ("status", "active")))] == 2
    assert got[("clustergenie_clusters", ())] == 2
    assert got[("clustergenie_exporter_last_success_timestamp_seconds", ())] > 0

    with db.transaction() as cur:
        cur.execute("DELETE FROM clusters WHERE id = 'c-hot'")
    exporter.export()
    assert not [key for key in pushed() if ("cluster_id", "c-hot") in key[1]]
    assert pushed()[("clustergenie_clusters", ())] == 1


def test_unreachable_pushgateway_is_logged_and_counted_and_the_next_run_catches_up(exporter, monkeypatch):
    from chalicelib.metrics import exposition
    from chalicelib.redis_client import get_redis

    add_cluster("c-1", {"cpu": [50.0]}, {})
    real = metrics_exporter.get_settings()
    monkeypatch.setattr(metrics_exporter, "get_settings", lambda: real.model_copy(update={"pushgateway_url": "http://127.0.0.1:1"}))
    assert exporter.export() == {"pushed": False, "error": "pushgateway", "clusters": 1, "samples": 1}
    monkeypatch.setattr(metrics_exporter, "get_settings", lambda: real)
    assert exporter.export()["pushed"] is True
    assert pushed()[("clustergenie_clusters", ())] == 1
    text = exposition.render([exposition.AggregatedCollector(get_redis())]).decode()
    assert 'clustergenie_exporter_runs_total{outcome="push_failed"} 1.0' in text
    assert 'clustergenie_exporter_runs_total{outcome="ok"} 1.0' in text


def test_clusters_are_read_in_chunks_and_every_one_is_pushed(exporter, monkeypatch):
    # Chunks of 2 over 5 clusters: three reads by primary key, every cluster and its droplets pushed once.
    monkeypatch.setattr(metrics_exporter, "CHUNK_CLUSTERS", 2)
    for n in range(5):
        add_cluster(f"c-{n}", {"cpu": [float(n)]}, {"active": n})
    result = exporter.export()
    assert result["pushed"] is True and result["clusters"] == 5 and result["samples"] == 5
    got = pushed()
    for n in range(5):
        assert got[("clustergenie_cluster_metric", (("cluster_id", f"c-{n}"), ("type", "cpu"), ("unit", "%")))] == float(n)
    assert {key[1] for key in got if key[0] == "clustergenie_cluster_droplets"} == {
        (("cluster_id", f"c-{n}"), ("status", "active")) for n in range(1, 5)}
    assert got[("clustergenie_clusters", ())] == 5


def test_latest_lookup_is_an_index_lookup_per_cluster_and_type(clean_db):
    with db.transaction() as cur:
        cur.execute("EXPLAIN " + LATEST_SQL, ("", 1000))
        plan = cur.fetchall()
    lookups = [row for row in plan if row["table"] == "mm"]
    assert lookups and lookups[0]["key"] == "idx_metrics_cluster_type_ts"
    assert lookups[0]["type"] == "ref" and "DEPENDENT" in lookups[0]["select_type"]
    joined = [row for row in plan if row["table"] == "m"]
    assert joined and joined[0]["key"] == "PRIMARY"


def test_the_push_names_the_content_type_prometheus_client_names():
    """The exporter writes the text format itself and names its content type without importing the library."""
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    assert metrics_exporter.CONTENT_TYPE == CONTENT_TYPE_LATEST
