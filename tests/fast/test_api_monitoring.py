"""Metrics listing, health on the latest real samples, and diagnosis."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.services.monitoring import MonitoringService

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def record(cluster_id: str, metric_type: str, value: float, minutes: int = 0) -> None:
    MonitoringService().record(cluster_id, metric_type, value, timestamp=T0 + dt.timedelta(minutes=minutes))


def test_metrics_listing_filters_by_cluster_and_type_with_paging(client, make_cluster):
    a, b = make_cluster("a"), make_cluster("b")
    for minute in range(5):
        record(a["id"], "cpu", 10 + minute, minute)
        record(a["id"], "memory", 50, minute)
    record(b["id"], "cpu", 99)

    page = client.get(f"/api/v1/metrics?cluster_id={a['id']}&type=cpu&page=1&page_size=2").json
    assert page["period"] == "1h" and page["total_count"] == 5 and (page["page"], page["page_size"]) == (1, 2)
    assert [m["value"] for m in page["metrics"]] == [14.0, 13.0]  # newest first
    assert page["metrics"][0] == {"id": page["metrics"][0]["id"], "cluster_id": a["id"], "type": "cpu",
                                  "value": 14.0, "unit": "%", "timestamp": "2024-05-01T12:04:00Z"}
    assert client.get(f"/api/v1/metrics?cluster_id={a['id']}").json["total_count"] == 10
    assert client.get("/api/v1/metrics?type=cpu").json["total_count"] == 6
    everything = client.get("/api/v1/metrics").json
    assert everything["total_count"] == 11 and everything["page_size"] == 50


@pytest.mark.parametrize(
    ("query", "field"),
    [("type=gpu", "type"), ("cluster_id=" + "c" * 65, "cluster_id")],
)
def test_metrics_listing_rejects_bad_queries(client, query, field):
    response = client.get(f"/api/v1/metrics?{query}")
    assert response.status_code == 400 and field in response.json["error"]


def test_metrics_listing_accepts_what_the_original_accepted(client):
    # `cluster_id=` means all clusters, bad paging falls back, unread parameters are ignored.
    response = client.get("/api/v1/metrics?cluster_id=&type=&page=0&page_size=x&sort_by=value&_=1")
    assert response.status_code == 200
    assert (response.json["page"], response.json["page_size"], response.json["period"]) == (1, 50, "1h")


def test_health_without_metrics_is_unknown_and_invents_nothing(client, make_cluster, snapshot):
    cluster = make_cluster()
    before = snapshot()
    response = client.get(f"/api/v1/health/{cluster['id']}")
    assert response.status_code == 200
    assert response.json["cluster_id"] == cluster["id"]
    assert response.json["status"] == "unknown" and response.json["issues"] == []
    assert response.json["timestamp"].endswith("Z")
    assert snapshot() == before  # the original wrote 60 minutes of mock metrics here


@pytest.mark.parametrize(
    ("samples", "status", "issues"),
    [
        ({"cpu": 80, "memory": 85, "disk": 90}, "healthy", []),       # thresholds are strict
        ({"cpu": 81}, "warning", ["High CPU usage detected"]),
        ({"memory": 86}, "critical", ["High memory usage detected"]),
        ({"disk": 91}, "critical", ["Low disk space"]),
        ({"cpu": 95, "memory": 90}, "critical", ["High CPU usage detected", "High memory usage detected"]),
        ({"network": 1000}, "unknown", []),                             # nothing the rules judge
        ({"cpu": 10, "network": 1000}, "healthy", []),
    ],
)
def test_health_follows_the_original_thresholds(client, make_cluster, samples, status, issues):
    cluster = make_cluster()
    for metric_type, value in samples.items():
        record(cluster["id"], metric_type, value)
    report = client.get(f"/api/v1/health/{cluster['id']}").json
    assert (report["status"], report["issues"]) == (status, issues)


def test_health_reads_only_the_latest_sample_of_each_type(client, make_cluster):
    cluster = make_cluster()
    record(cluster["id"], "memory", 99, minutes=0)   # an old spike ...
    record(cluster["id"], "memory", 40, minutes=5)   # ... since recovered
    record(cluster["id"], "cpu", 20, minutes=0)
    record(cluster["id"], "cpu", 90, minutes=6)
    assert client.get(f"/api/v1/health/{cluster['id']}").json["status"] == "warning"


def test_health_of_a_missing_cluster_is_404(client):
    assert client.get("/api/v1/health/cluster-nope").status_code == 404


def test_diagnosis_applies_the_original_rules(client, make_cluster):
    cluster = make_cluster("shop", "fra1")
    report = client.post("/api/v1/diagnosis/diagnose", {"cluster_id": cluster["id"]})
    assert report.status_code == 200 and set(report.json) == {"cluster", "insights", "recommendations"}
    assert report.json["cluster"]["id"] == cluster["id"]
    assert report.json["insights"] == ["Cluster is running with 0 droplets", "Region distribution: fra1",
                                       "All systems operational"]
    assert report.json["recommendations"] == ["Add more droplets for better redundancy and load distribution",
                                              "Create initial droplet to get the cluster running"]

    client.put(f"/api/v1/clusters/{cluster['id']}", {"status": "critical"})
    for i in range(2):
        client.post("/api/v1/droplets", {"name": f"d{i}", "region": "fra1", "size": "s-1vcpu-1gb",
                                         "image": "ubuntu-22-04-x64", "cluster_id": cluster["id"]})
    record(cluster["id"], "disk", 95)
    report = client.post("/api/v1/diagnosis/diagnose", {"cluster_id": cluster["id"]}).json
    assert "Critical issues require immediate attention" in report["insights"]
    assert "Latest metrics: Low disk space" in report["insights"]
    assert report["recommendations"] == ["Immediate scaling required - add droplets to handle load",
                                         "Check droplet health and restart failed instances",
                                         "Scale up cluster with additional droplets"]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [({}, "cluster_id", 400), ({"cluster_id": 5}, "cluster_id", 400), ({"cluster_id": ""}, "cluster_id", 400),
     ({"cluster_id": "c", "deep": True}, "deep", 400), ({"cluster_id": "cluster-nope"}, "Cluster not found", 404)],
)
def test_diagnosis_rejects_bad_input(client, snapshot, body, field, status):
    before = snapshot()
    response = client.post("/api/v1/diagnosis/diagnose", body)
    assert response.status_code == status and field in response.json["error"]
    assert snapshot() == before


def test_latest_sample_per_type_is_an_index_lookup_not_a_scan(mariadb):  # noqa: ANN001
    from chalicelib import db
    from chalicelib.repositories.metrics import _LATEST_PER_TYPE

    plan = db.query("EXPLAIN " + _LATEST_PER_TYPE, ("cluster-x",) * 4)
    lookups = [row for row in plan if row["table"] == "metrics"]
    assert len(lookups) == 4
    assert all(row["key"] == "idx_metrics_cluster_type_ts" and row["type"] == "ref" for row in lookups), plan
    assert not any("filesort" in (row.get("Extra") or "") for row in lookups), plan


@pytest.mark.parametrize("by_cluster", [True, False])
@pytest.mark.parametrize("by_type", [True, False])
def test_every_metrics_listing_reads_an_index_in_order(mariadb, by_cluster, by_type):  # noqa: ANN001
    from chalicelib import db
    from chalicelib.repositories.metrics import list_filter, page_sql

    args = [v for v, on in (("cluster-x", by_cluster), ("cpu", by_type)) if on]
    [plan] = db.query("EXPLAIN " + page_sql(list_filter(by_cluster=by_cluster, by_type=by_type)), (*args, 50, 0))
    assert plan["key"] and plan["key"].startswith("idx_metrics_"), plan
    assert "filesort" not in (plan["Extra"] or ""), plan
