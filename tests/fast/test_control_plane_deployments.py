"""Deployments (issue 8): routes over the real database, the step plans, a rollout run through its steps
with each step logged and emitted, a canary failing at step 2 and rolled back."""
from __future__ import annotations

import json

import pytest
from control_plane_support import control_plane_snapshot

from chalicelib.services.deployments import DeploymentFailed, DeploymentService, plan


@pytest.mark.parametrize(("strategy", "target", "steps"), [
    ("canary", 100, [10, 50, 100]), ("canary", 30, [10, 30]), ("canary", 5, [5]),
    ("rolling", 100, [25, 50, 75, 100]), ("rolling", 60, [25, 50, 60]), ("rolling", 25, [25]),
    ("blue-green", 100, [0, 100]),
])
def test_plans(strategy, target, steps):
    assert plan(strategy, target) == steps


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event_type, deployment, message, payload):
        self.events.append((event_type, payload.get("step"), payload.get("action"), payload.get("percent")))


def start(client, cluster_id, strategy="canary", target=100, version="v2.0.1"):
    response = client.post("/api/v1/deployments/start", {"cluster_id": cluster_id, "version": version,
                                                         "strategy": strategy, "target_percent": target})
    assert response.status_code == 201, response.json  # a create, as in the original
    return response.json


def test_start_stores_a_pending_deployment_and_enqueues_its_job(client, make_cluster, job_queue):
    cid = make_cluster()["id"]
    deployment = start(client, cid)
    assert deployment["id"].startswith("deployment-") and deployment["status"] == "pending"
    assert (deployment["plan"], deployment["current_percent"], deployment["logs"]) == ([10, 50, 100], 0, [])
    assert job_queue.sent_job_ids() == [deployment["job_id"]]
    job = client.get(f"/api/v1/jobs/{deployment['job_id']}").json["job"]
    assert job["type"] == "deploy" and json.loads(job["parameters"]) == {
        "cluster_id": cid, "deployment_id": deployment["id"], "action": "rollout"}
    assert client.get(f"/api/v1/deployments/{deployment['id']}").json == deployment
    assert client.get(f"/api/v1/deployments?cluster_id={cid}").json == {"items": [deployment]}


def test_a_rollout_runs_every_step_logged_and_emitted(client, make_cluster, job_queue):
    cid = make_cluster()["id"]
    deployment = start(client, cid, strategy="rolling", target=75)
    events = Recorder()
    service = DeploymentService(verify=lambda d, step, percent: None, publish=events)
    result = service.run_job({"deployment_id": deployment["id"], "action": "rollout"})
    assert result == {"deployment_id": deployment["id"], "status": "succeeded", "current_percent": 75}
    got = client.get(f"/api/v1/deployments/{deployment['id']}").json
    assert (got["status"], got["current_percent"]) == ("rolled_out", 75)  # the original's word for succeeded
    assert [(s["step"], s["action"], s["percent"], s["status"]) for s in got["log_entries"]] == [
        (1, "rollout", 25, "succeeded"), (2, "rollout", 50, "succeeded"), (3, "rollout", 75, "succeeded")]
    assert got["log_entries"][0]["message"] == "step 1: rolling 25% of traffic on v2.0.1"
    # `logs` as the original sent them: lines of text; `started_at` as well as our created_at
    assert got["logs"][0] == "rollout step 1 - 25% succeeded: step 1: rolling 25% of traffic on v2.0.1"
    assert got["started_at"] == got["created_at"] == deployment["started_at"]
    assert events.events == [("deployment_started", None, None, None), ("deployment_step", 1, "rollout", 25),
                             ("deployment_step", 2, "rollout", 50), ("deployment_step", 3, "rollout", 75),
                             ("deployment_succeeded", None, None, None)]
    # a redelivered job does nothing twice
    assert service.execute(deployment["id"]).logs == DeploymentService().get(deployment["id"]).logs


def test_canary_failing_at_step_two_stops_and_is_rolled_back(client, make_cluster, job_queue):
    cid = make_cluster()["id"]
    deployment = start(client, cid, strategy="canary", target=100)
    events = Recorder()

    def error_rate_check(d, step, percent):
        return "error rate 7.5% above 5% at 50% traffic" if step == 2 else None

    service = DeploymentService(verify=error_rate_check, publish=events)
    with pytest.raises(DeploymentFailed, match="step 2: error rate"):
        service.run_job({"deployment_id": deployment["id"], "action": "rollout"})
    failed = client.get(f"/api/v1/deployments/{deployment['id']}").json
    assert (failed["status"], failed["current_percent"]) == ("failed", 10)
    assert failed["reason"] == "step 2: error rate 7.5% above 5% at 50% traffic"
    assert [(s["step"], s["percent"], s["status"]) for s in failed["log_entries"]] == [(1, 10, "succeeded"), (2, 50, "failed")]

    rolled = client.post(f"/api/v1/deployments/{deployment['id']}/rollback")
    assert rolled.status_code == 200 and rolled.json["status"] == "rolling_back"
    assert rolled.json["ok"] is True and rolled.json["rolled_back"] == deployment["id"]  # the original's answer
    rollback_job = client.get(f"/api/v1/jobs/{rolled.json['job_id']}").json["job"]
    assert json.loads(rollback_job["parameters"])["action"] == "rollback" and rollback_job["id"] in job_queue.sent_job_ids()
    # a second rollback request while one is under way is refused
    assert client.post(f"/api/v1/deployments/{deployment['id']}/rollback").status_code == 409

    assert service.run_job(json.loads(rollback_job["parameters"]))["status"] == "rolled_back"
    done = client.get(f"/api/v1/deployments/{deployment['id']}").json
    assert (done["status"], done["current_percent"]) == ("rolled_back", 0)
    assert [(s["step"], s["action"], s["percent"], s["status"]) for s in done["log_entries"]] == [
        (1, "rollout", 10, "succeeded"), (2, "rollout", 50, "failed"), (1, "rollback", 0, "succeeded")]
    assert events.events[-3:] == [("deployment_failed", 2, None, None), ("deployment_step", 1, "rollback", 0),
                                  ("deployment_rolled_back", None, None, None)]


def test_health_verifier_fails_a_step_on_a_critical_cluster(client, make_cluster, job_queue):
    import datetime as dt

    from chalicelib.repositories import MetricRepository

    cid = make_cluster()["id"]
    MetricRepository().record(cluster_id=cid, metric_type="memory", value=97.0, unit="%",
                              timestamp=dt.datetime.now(dt.timezone.utc))
    deployment = start(client, cid, strategy="blue-green")
    got = DeploymentService(publish=Recorder()).execute(deployment["id"])
    assert got.status == "failed" and got.reason.startswith("step 1: cluster health critical after step 1")


def test_rollback_of_a_pending_deployment_is_409(client, make_cluster, job_queue):
    deployment = start(client, make_cluster()["id"])
    response = client.post(f"/api/v1/deployments/{deployment['id']}/rollback")
    assert response.status_code == 409 and "pending" in response.json["error"]


@pytest.mark.parametrize(("change", "field"), [
    ({"strategy": "big-bang"}, "strategy"), ({"target_percent": 0}, "target_percent"),
    ({"target_percent": 101}, "target_percent"), ({"target_percent": "50"}, "target_percent"),
    ({"version": ""}, "version"), ({"version": "v 2"}, "version"), ({"cluster_id": None}, "cluster_id"),
    ({"extra": 1}, "extra"),
])
def test_bad_start_is_400_naming_the_field_and_writes_nothing(client, make_cluster, job_queue, change, field):
    cid = make_cluster()["id"]
    before = control_plane_snapshot()
    body = {"cluster_id": cid, "version": "v2", "strategy": "canary", "target_percent": 50, **change}
    response = client.post("/api/v1/deployments/start", body)
    assert response.status_code == 400 and field in response.json["error"], response.json
    assert control_plane_snapshot() == before and job_queue.messages == []


def test_missing_things_are_404(client, job_queue):
    body = {"cluster_id": "cluster-nope", "version": "v2", "strategy": "canary", "target_percent": 50}
    assert client.post("/api/v1/deployments/start", body).status_code == 404
    assert client.get("/api/v1/deployments/deployment-nope").status_code == 404
    assert client.post("/api/v1/deployments/deployment-nope/rollback").status_code == 404
    assert client.get("/api/v1/deployments?cluster_id=cluster-nope").status_code == 404
    missing = client.get("/api/v1/deployments")
    assert missing.status_code == 400 and "cluster_id" in missing.json["error"]
    assert job_queue.messages == []


def test_post_jobs_still_refuses_internal_job_types(client, make_cluster):
    cid = make_cluster()["id"]
    response = client.post("/api/v1/jobs", {"type": "deploy", "parameters": {"cluster_id": cid}})
    assert response.status_code == 400 and "type" in response.json["error"]
    assert json.loads(json.dumps(response.json))
