"""The control plane's jobs through the real job worker (issue 8): a deployment's `deploy` job, a
droplet migration's `migrate` job and an autoscaler's `scale` job, each delivered as its SQS message to
the app's `job_worker`; deployment events read back from the `deployments` topic."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from control_plane_support import add_droplet, catalog  # noqa: F401 - fixture
from topic_reader import topic_reader

from chalicelib.providers import set_provider
from chalicelib.providers.simulated import SimulatedProvider
from chalicelib.repositories import DropletRepository, MetricRepository
from chalicelib.settings import get_settings


@pytest.fixture
def worker(app):  # noqa: ANN001
    """`run_queued(job_queue)`: deliver every message sent so far (once) to the job_worker."""
    from chalice.test import Client

    delivered: set[str] = set()
    with Client(app) as test_client:
        def run_queued(queue) -> list[dict[str, Any]]:  # noqa: ANN001
            bodies = [m["MessageBody"] for m in queue.messages if m["MessageBody"] not in delivered]
            delivered.update(bodies)
            if not bodies:
                return []
            event = test_client.events.generate_sqs_event(message_bodies=bodies,
                                                          queue_name=get_settings().jobs_queue_name)
            for record in event["Records"]:
                record["messageId"] = str(uuid.uuid4())
            assert test_client.lambda_.invoke("job_worker", event).payload == {"batchItemFailures": []}
            return [json.loads(b) for b in bodies]

        yield run_queued


@pytest.fixture
def deployment_events(kafka_broker):  # noqa: ANN001
    """`read(deployment_id, until_type)`: this test's events on the `deployments` topic for a deployment."""
    with topic_reader("deployments", lambda event: event.get("payload", {}).get("deployment_id")) as read:
        yield read


def test_a_deployment_runs_through_the_job_worker_and_emits_its_steps(client, make_cluster, job_queue, worker,
                                                                      deployment_events):
    cid = make_cluster()["id"]
    deployment = client.post("/api/v1/deployments/start", {"cluster_id": cid, "version": "v3", "strategy": "canary",
                                                           "target_percent": 100}).json
    worker(job_queue)
    done = client.get(f"/api/v1/deployments/{deployment['id']}").json
    assert (done["status"], done["current_percent"]) == ("rolled_out", 100)
    assert [(s["step"], s["percent"]) for s in done["log_entries"]] == [(1, 10), (2, 50), (3, 100)]
    assert client.get(f"/api/v1/jobs/{deployment['job_id']}").json["job"]["status"] == "completed"
    events = deployment_events(deployment["id"], "deployment_succeeded")
    assert [e["type"] for e in events] == ["deployment_started"] + ["deployment_step"] * 3 + ["deployment_succeeded"]
    assert {e["cluster_id"] for e in events} == {cid} and events[1]["payload"]["percent"] == 10

    rolled = client.post(f"/api/v1/deployments/{deployment['id']}/rollback").json
    worker(job_queue)
    back = client.get(f"/api/v1/deployments/{deployment['id']}").json
    assert (back["status"], back["current_percent"]) == ("rolled_back", 0)
    assert [(s["step"], s["action"]) for s in back["log_entries"][3:]] == [(3, "rollback"), (2, "rollback"), (1, "rollback")]
    assert client.get(f"/api/v1/jobs/{rolled['job_id']}").json["job"]["status"] == "completed"


def test_a_migration_runs_through_the_job_worker(client, catalog, make_cluster, job_queue, worker):
    set_provider("aws", SimulatedProvider())  # the catalogue's `aws`, played by the simulated machines
    try:
        cid = make_cluster()["id"]
        droplet = client.post("/api/v1/droplets", {"name": "web", "region": "nyc1", "size": "s-1vcpu-1gb",
                                                   "cluster_id": cid}).json["droplet"]
        DropletRepository().update(droplet["id"], {"status": "active"})
        accepted = client.post("/api/v1/migrations", {"droplet_id": droplet["id"], "target_provider": "aws"}).json
        worker(job_queue)
        job = client.get(f"/api/v1/jobs/{accepted['job_id']}").json["job"]
        assert job["status"] == "completed", job
        new = DropletRepository().get(json.loads(job["result"])["new_droplet_id"])
        assert (new["provider"], new["status"], new["region"]) == ("aws", "active", "nyc1")
        assert DropletRepository().get(droplet["id"])["status"] == "deleted"
        assert client.get(f"/api/v1/clusters/{cid}").json["cluster"]["droplets"] == [new["id"]]
    finally:
        set_provider("aws", None)


def test_an_autoscaler_action_adds_exactly_one_droplet_to_that_cluster(client, make_cluster, job_queue, worker):
    cid, other = make_cluster()["id"], make_cluster("other")["id"]
    for _ in range(2):
        add_droplet(cid)
    add_droplet(other)
    MetricRepository().record(cluster_id=cid, metric_type="cpu", value=95.0, unit="%",
                              timestamp=dt.datetime.now(dt.timezone.utc))
    client.post("/api/v1/autoscaling/policies", {"cluster_id": cid, "name": "cpu", "type": "metrics",
                                                 "min_replicas": 1, "max_replicas": 5, "metric_type": "cpu",
                                                 "metric_trigger": 0.8})
    [action] = client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}").json["scale_actions"]
    client.post(f"/api/v1/autoscaling/evaluate?cluster_id={cid}")  # in the cool-down: nothing more
    worker(job_queue)
    assert client.get(f"/api/v1/jobs/{action['job_id']}").json["job"]["status"] == "completed"
    live = [d for d in DropletRepository().list(cid) if d["status"] == "active"]
    assert len(live) == 3
    assert [d["status"] for d in DropletRepository().list(other)] == ["active"]
