"""Autoscaling (issue 8): policy CRUD and validation over the real database, the decision table on the
pure `decide`, evaluation enqueueing scale jobs, the race between two evaluations, and the scheduled
autoscaler function."""
from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from control_plane_support import add_droplet, catalog, control_plane_snapshot  # noqa: F401 - fixture

from chalicelib.functions.autoscaler import run
from chalicelib.services.autoscaling import AutoscalingService
from chalicelib.repositories import MetricRepository
from chalicelib.repositories.policies import PolicyRepository
from chalicelib.services.autoscaling import AutoscalingService, decide

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
METRICS = {"type": "metrics", "min_replicas": 1, "max_replicas": 3, "metric_type": "cpu",
           "metric_trigger": Decimal("0.8"), "time_window": None, "cost_limit": None, "cooldown_seconds": 300}
TIME = {**METRICS, "type": "time_of_day", "metric_type": None, "metric_trigger": None, "time_window": "09:00-17:00"}
NIGHT = {**TIME, "time_window": "22:00-06:00"}
COST = {**METRICS, "type": "cost", "metric_type": None, "metric_trigger": None, "cost_limit": Decimal("0.10")}


# (policy, live droplets, latest metric, hourly cost, now, last scaled) -> (action, target, reason starts with)
TABLE = [
    pytest.param(METRICS, 2, 85.0, None, NOW, None, ("scale_up", 3, "cpu 85.0 >= trigger 80"), id="metrics up"),
    pytest.param(METRICS, 2, 80.0, None, NOW, None, ("scale_up", 3, "cpu 80.0 >= trigger 80"), id="metrics at trigger"),
    pytest.param(METRICS, 3, 95.0, None, NOW, None, ("none", 3, "cpu 95.0 >= trigger 80, but already at max"),
                 id="metrics at max"),
    pytest.param(METRICS, 2, 48.0, None, NOW, None, ("scale_down", 1, "cpu 48.0 <= 48.0"), id="metrics down at 60%"),
    pytest.param(METRICS, 1, 10.0, None, NOW, None, ("none", 1, "cpu 10.0 <= 48.0 (60% of the trigger), but already at min"),
                 id="metrics at min"),
    pytest.param(METRICS, 2, 60.0, None, NOW, None, ("none", 2, "cpu 60.0 is between 48.0 and the trigger 80"),
                 id="metrics in band"),
    pytest.param(METRICS, 2, None, None, NOW, None, ("none", 2, "no cpu metrics for this cluster"), id="no metrics"),
    pytest.param(METRICS, 2, 99.0, None, NOW, NOW - dt.timedelta(seconds=100),
                 ("none", 2, "cool-down: the cluster was scaled at 2026-03-01T11:58:20Z, 200s left"), id="cool-down"),
    pytest.param(METRICS, 2, 99.0, None, NOW, NOW - dt.timedelta(seconds=300), ("scale_up", 3, "cpu 99.0"),
                 id="cool-down over"),
    pytest.param(METRICS, 0, None, None, NOW, None, ("scale_up", 1, "0 droplets is below min_replicas 1"),
                 id="below min"),
    pytest.param(METRICS, 5, 99.0, None, NOW, None, ("scale_down", 3, "5 droplets is above max_replicas 3"),
                 id="above max"),
    pytest.param(TIME, 1, None, None, NOW, None, ("scale_up", 3, "inside the time window 09:00-17:00"), id="window in"),
    pytest.param(TIME, 3, None, None, NOW, None, ("none", 3, "inside the time window 09:00-17:00, already at max"),
                 id="window in at max"),
    pytest.param(TIME, 2, None, None, NOW.replace(hour=17), None, ("none", 2, "outside the time window"),
                 id="window end exclusive"),
    pytest.param(NIGHT, 1, None, None, NOW.replace(hour=2), None, ("scale_up", 3, "inside the time window 22:00-06:00"),
                 id="window wraps midnight"),
    pytest.param(NIGHT, 1, None, None, NOW, None, ("none", 1, "outside the time window 22:00-06:00"), id="window out"),
    pytest.param(COST, 2, None, Decimal("0.15"), NOW, None, ("scale_down", 1, "hourly cost 0.15 exceeds the cost_limit 0.10"),
                 id="cost over"),
    pytest.param(COST, 1, None, Decimal("0.15"), NOW, None, ("none", 1, "hourly cost 0.15 exceeds the cost_limit 0.10, but already at min"),
                 id="cost over at min"),
    pytest.param(COST, 2, None, Decimal("0.10"), NOW, None, ("none", 2, "hourly cost 0.10 is within the cost_limit 0.10"),
                 id="cost at limit"),
    pytest.param(COST, 2, None, Decimal("0.50"), NOW, NOW - dt.timedelta(seconds=10), ("none", 2, "cool-down"),
                 id="cost in cool-down"),
]


@pytest.mark.parametrize(("policy", "current", "metric", "cost", "now", "last", "expected"), TABLE)
def test_decision_table(policy, current, metric, cost, now, last, expected):
    d = decide(policy, current, metric_value=metric, hourly_cost=cost, now=now, last_scaled_at=last)
    assert (d.action, d.target) == expected[:2] and d.reason.startswith(expected[2]), d.reason


GOOD = {"name": "cpu-high", "type": "metrics", "min_replicas": 1, "max_replicas": 3, "metric_type": "cpu",
        "metric_trigger": 0.8}  # a fraction, as in the original: 80%


def test_policy_crud(client, make_cluster):
    cid = make_cluster()["id"]
    created = client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": cid})
    assert created.status_code == 201
    policy = created.json
    assert policy["id"].startswith("policy-") and policy["cluster_id"] == cid and policy["enabled"] is True
    assert (policy["metric_trigger"], policy["cooldown_seconds"], policy["version"]) == (0.8, 300, 1)
    assert (policy["time_window"], policy["cost_limit"]) == ("", 0)  # unused fields as the original sent them
    assert client.get(f"/api/v1/autoscaling/policies/{policy['id']}").json == policy
    assert client.get(f"/api/v1/autoscaling/policies?cluster_id={cid}").json == {"items": [policy]}

    updated = client.put(f"/api/v1/autoscaling/policies/{policy['id']}",
                         {"type": "time_of_day", "time_window": "08:00-20:00", "metric_type": None,
                          "metric_trigger": None, "enabled": False})
    assert updated.status_code == 200, updated.json
    assert (updated.json["type"], updated.json["time_window"], updated.json["enabled"], updated.json["version"]) == (
        "time_of_day", "08:00-20:00", False, 2)
    deleted = client.delete(f"/api/v1/autoscaling/policies/{policy['id']}")
    assert deleted.status_code == 200
    assert deleted.json == {"ok": True, "deleted": policy["id"], "message": "Policy deleted successfully"}
    assert client.get(f"/api/v1/autoscaling/policies/{policy['id']}").status_code == 404
    assert client.get(f"/api/v1/autoscaling/policies?cluster_id={cid}").json == {"items": []}


def test_the_original_consoles_policy_forms_are_accepted(client, make_cluster):
    # The original console's full form: no replicas bounds, "" and 0 for the fields a policy type does not
    # use, and on update its own cluster_id again; or only {enabled} for the toggle.
    cid = make_cluster()["id"]
    form = {"name": "office hours", "cluster_id": cid, "type": "time_of_day", "enabled": True, "metric_type": "",
            "metric_trigger": 0, "time_window": "08:00-18:00", "cost_limit": 0}
    created = client.post("/api/v1/autoscaling/policies", form)
    assert created.status_code == 201, created.json
    assert (created.json["min_replicas"], created.json["max_replicas"]) == (1, 10)
    updated = client.put(f"/api/v1/autoscaling/policies/{created.json['id']}", {**form, "time_window": "09:00-17:00"})
    assert updated.status_code == 200 and updated.json["time_window"] == "09:00-17:00", updated.json
    toggled = client.put(f"/api/v1/autoscaling/policies/{created.json['id']}", {"enabled": False})
    assert toggled.status_code == 200 and toggled.json["enabled"] is False
    moved = client.put(f"/api/v1/autoscaling/policies/{created.json['id']}", {"cluster_id": make_cluster()["id"]})
    assert moved.status_code == 400 and "cluster_id" in moved.json["error"]


def test_metric_trigger_is_a_fraction_and_80_is_refused_for_a_percent_metric(client, make_cluster):
    cid = make_cluster()["id"]
    response = client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": cid, "metric_trigger": 80})
    assert response.status_code == 400 and "0.8 means 80%" in response.json["error"]


@pytest.mark.parametrize(("change", "field"), [
    ({"min_replicas": 4}, "min_replicas"), ({"max_replicas": 0}, "max_replicas"), ({"min_replicas": -1}, "min_replicas"),
    ({"metric_type": "gpu"}, "metric_type"), ({"metric_type": None}, "metric_type"),
    ({"metric_trigger": -0.5}, "metric_trigger"), ({"metric_trigger": 1.01}, "metric_trigger"),
    ({"metric_trigger": "high"}, "metric_trigger"), ({"type": "magic"}, "type"),
    ({"type": "time_of_day"}, "time_window"), ({"type": "time_of_day", "time_window": "9-5"}, "time_window"),
    ({"type": "time_of_day", "time_window": "25:00-26:00"}, "time_window"),
    ({"type": "time_of_day", "time_window": "10:00-10:00"}, "time_window"),
    ({"type": "cost", "cost_limit": 0}, "cost_limit"), ({"type": "cost", "cost_limit": -1}, "cost_limit"),
    ({"min_replicas": "1"}, "min_replicas"), ({"enabled": "yes"}, "enabled"), ({"bogus": 1}, "bogus"),
    ({"cluster_id": None}, "cluster_id"), ({"name": ""}, "name"), ({"cooldown_seconds": -5}, "cooldown_seconds"),
])
def test_bad_policies_are_400_naming_the_field_and_write_nothing(client, make_cluster, change, field):
    cid = make_cluster()["id"]
    before = control_plane_snapshot()
    response = client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": cid, **change})
    assert response.status_code == 400 and field in response.json["error"], response.json
    assert control_plane_snapshot() == before


def test_bad_update_is_400_and_changes_nothing(client, make_cluster):
    cid = make_cluster()["id"]
    policy = client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": cid}).json
    for body, field in [({"min_replicas": 9}, "min_replicas"), ({"metric_type": "gpu"}, "metric_type"),
                        ({"cluster_id": "cluster-other"}, "cluster_id"), ({"metric_trigger": 5}, "metric_trigger")]:
        response = client.put(f"/api/v1/autoscaling/policies/{policy['id']}", body)
        assert response.status_code == 400 and field in response.json["error"], response.json
    assert client.get(f"/api/v1/autoscaling/policies/{policy['id']}").json == policy


def test_missing_things_are_404_and_list_needs_a_cluster(client):
    assert client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": "cluster-nope"}).status_code == 404
    for method in ("get", "delete"):
        assert getattr(client, method)("/api/v1/autoscaling/policies/policy-nope").status_code == 404
    assert client.put("/api/v1/autoscaling/policies/policy-nope", {"name": "x"}).status_code == 404
    assert client.get("/api/v1/autoscaling/policies?cluster_id=cluster-nope").status_code == 404
    missing = client.get("/api/v1/autoscaling/policies")
    assert missing.status_code == 400 and "cluster_id" in missing.json["error"]
    assert client.post("/api/v1/autoscaling/evaluate").status_code == 400
    assert client.post("/api/v1/autoscaling/evaluate?cluster_id=cluster-nope").status_code == 404


def _hot_cluster(client, make_cluster, droplets=2, cpu=92.0, **policy):
    cid = make_cluster()["id"]
    for _ in range(droplets):
        add_droplet(cid)
    MetricRepository().record(cluster_id=cid, metric_type="cpu", value=cpu, unit="%",
                              timestamp=dt.datetime.now(dt.timezone.utc))
    created = client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": cid, **policy})
    assert created.status_code == 201, created.json
    return cid, created.json


def test_evaluate_enqueues_one_scale_job_for_that_cluster_then_cools_down(client, make_cluster, job_queue, catalog):
    other = make_cluster("other")["id"]
    cid, policy = _hot_cluster(client, make_cluster)
    result = client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}")
    assert result.status_code == 200
    body = result.json
    assert (body["cluster_id"], body["evaluated"]) == (cid, 1)
    [action] = body["scale_actions"]
    assert body["actions"] == [f"policy:{action['policy_id']} -> {action['action']} ({action['reason']})"]
    assert (action["action"], action["current"], action["target"], action["policy_id"]) == ("scale_up", 2, 3, policy["id"])
    assert body["decisions"] == [action]

    assert job_queue.sent_job_ids() == [action["job_id"]]
    job = client.get(f"/api/v1/jobs/{action['job_id']}").json["job"]
    assert job["type"] == "scale" and job["cluster_id"] == cid and job["status"] == "queued"
    assert {k: json.loads(job["parameters"])[k] for k in ("cluster_id", "replicas", "min_replicas", "max_replicas")} == {
        "cluster_id": cid, "replicas": "3", "min_replicas": "1", "max_replicas": "3"}

    again = client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}").json
    assert again["actions"] == [] and again["decisions"][0]["reason"].startswith("cool-down")
    assert len(job_queue.messages) == 1
    assert client.post(f"/api/v1/autoscaling/evaluate?cluster_id={other}").json == {
        "cluster_id": other, "evaluated": 0, "actions": [], "scale_actions": [], "decisions": []}


def test_disabled_policies_and_no_metrics_take_no_action(client, make_cluster, job_queue):
    cid = make_cluster()["id"]
    add_droplet(cid)
    client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": cid})
    client.post("/api/v1/autoscaling/policies", {**GOOD, "cluster_id": cid, "enabled": False})
    body = client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}").json
    assert body["evaluated"] == 1 and body["actions"] == []
    assert body["decisions"][0]["reason"] == "no cpu metrics for this cluster"
    assert job_queue.messages == []


def test_two_racing_evaluations_scale_once(client, make_cluster, job_queue, monkeypatch):
    cid, _ = _hot_cluster(client, make_cluster)
    # Every evaluation reads the state before any of them claims: only the conditional UPDATE separates them.
    monkeypatch.setattr(PolicyRepository, "last_scaled_at", lambda self, cluster_id: None)
    barrier = threading.Barrier(8)
    real_claim = PolicyRepository.claim_scale

    def claim_after_everyone_decided(self, cluster_id, cooldown):
        barrier.wait(timeout=10)
        return real_claim(self, cluster_id, cooldown)

    monkeypatch.setattr(PolicyRepository, "claim_scale", claim_after_everyone_decided)
    results, errors = [], []

    def evaluate():
        try:
            results.append(AutoscalingService().evaluate(cid))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sum(len(r.actions) for r in results) == 1
    assert len(job_queue.messages) == 1
    losers = [r.decisions[0].reason for r in results if not r.actions]
    assert len(losers) == 7 and all(r.startswith("another evaluation scaled this cluster") for r in losers)


def test_racing_evaluations_in_separate_processes_scale_once(client, make_cluster, job_queue):
    """As separate Lambda instances would: each racer has its own database connection."""
    import multiprocessing

    from control_plane_support import race_evaluate

    from chalicelib import db

    cid, _ = _hot_cluster(client, make_cluster)
    ctx = multiprocessing.get_context("spawn")
    racers = 6
    barrier, results = ctx.Barrier(racers), ctx.Queue()
    processes = [ctx.Process(target=race_evaluate, args=(cid, barrier, results)) for _ in range(racers)]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    assert all(isinstance(o, int) for o in outcomes), outcomes
    outcomes.sort()
    for p in processes:
        p.join(timeout=30)
    assert outcomes == [0] * (racers - 1) + [1]
    [row] = db.query("SELECT COUNT(*) AS n FROM jobs WHERE cluster_id = %s AND type = 'scale'", (cid,))
    assert row["n"] == 1


def test_a_failed_enqueue_gives_the_claim_back(client, make_cluster, job_queue):
    cid, _ = _hot_cluster(client, make_cluster)
    job_queue.fail_with = RuntimeError("queue down")
    assert client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}").status_code == 503
    job_queue.fail_with = None
    assert len(client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}").json["scale_actions"]) == 1


def test_cost_policy_uses_the_clusters_bill(client, make_cluster, job_queue, catalog):
    cid = make_cluster()["id"]
    for _ in range(3):
        add_droplet(cid)  # 3 x 0.05 = 0.15/h
    client.post("/api/v1/autoscaling/policies", {"cluster_id": cid, "name": "budget", "type": "cost",
                                                 "min_replicas": 1, "max_replicas": 5, "cost_limit": 0.1})
    [action] = client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}").json["scale_actions"]
    assert (action["action"], action["target"]) == ("scale_down", 2)
    assert action["reason"] == "hourly cost 0.1500 exceeds the cost_limit 0.1000"


def test_scheduled_autoscaler_and_threshold_hook_use_the_same_path(client, make_cluster, job_queue, catalog):
    hot, _ = _hot_cluster(client, make_cluster)
    cool, _ = _hot_cluster(client, make_cluster, cpu=60.0)
    make_cluster("no-policy")
    summary = run()
    assert summary["clusters"] == 2 and summary["failed"] == [] and len(summary["jobs"]) == 1
    assert job_queue.sent_job_ids() == summary["jobs"]
    assert json.loads(job_queue.messages[0]["MessageBody"])["job_id"] == summary["jobs"][0]
    hook = AutoscalingService().react_to_alert(hot, parameters={}, cooldown_seconds=300).evaluation
    assert hook.actions == [] and hook.decisions[0].reason.startswith("cool-down")
    assert client.get(f"/api/v1/jobs/{summary['jobs'][0]}").json["job"]["cluster_id"] == hot


def test_autoscaler_schedule_is_wired_in_the_app():
    from app import app

    assert "autoscaler" in app.handler_map
