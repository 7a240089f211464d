"""The three bugs of issue 12, through the API and the real job_worker function (chalice.test.Client):

- a droplet created with POST /droplets is provisioned by its job and becomes `active` with an address;
- every provider the API accepts has a driver (`digitalocean` and catalogue-only providers: the simulated one);
- deleting a droplet or a cluster with machines stops them through `terminate` jobs, outcome visible.

The provider that records terminations below is the simulated driver with a memory (a fake, because the
fast tier has no EC2: the LocalStack tier terminates real EC2 instances of LocalStack).
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chalicelib import db
from chalicelib.providers import ProviderError, get_provider, set_provider
from chalicelib.providers.simulated import SimulatedProvider
from chalicelib.settings import get_settings

DROPLET = {"name": "web", "region": "nyc3", "size": "s-1vcpu-1gb"}


@pytest.fixture
def run_jobs(app, job_queue):  # noqa: ANN001
    """Deliver every queued job message to the real job_worker function, until the queue is drained."""
    from chalice.test import Client

    delivered = 0  # messages are only ever appended: deliver the ones after this position
    with Client(app) as test_client:
        def drain() -> None:
            nonlocal delivered
            while delivered < len(job_queue.messages):
                bodies = [m["MessageBody"] for m in job_queue.messages[delivered:]]
                delivered = len(job_queue.messages)
                event = test_client.events.generate_sqs_event(message_bodies=bodies,
                                                              queue_name=get_settings().jobs_queue_name)
                for record in event["Records"]:
                    record["messageId"] = str(uuid.uuid4())
                assert test_client.lambda_.invoke("job_worker", event).payload == {"batchItemFailures": []}

        yield drain


class RecordingProvider(SimulatedProvider):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.terminated: list[str] = []
        self.refuse = False

    def terminate(self, droplet: dict[str, Any]) -> None:
        if self.refuse:
            raise ProviderError("refused")
        self.terminated.append(droplet["provider_instance_id"])


@pytest.fixture
def recording():
    provider = RecordingProvider("simulated")
    set_provider("simulated", provider)
    yield provider
    set_provider("simulated", None)


def job(client, job_id: str) -> dict[str, Any]:  # noqa: ANN001
    return client.get(f"/api/v1/jobs/{job_id}").json["job"]


@pytest.mark.parametrize("provider", ["simulated", "digitalocean"])
def test_a_droplet_created_through_the_api_becomes_active_with_an_address(client, make_cluster, run_jobs, provider):
    cluster = make_cluster()
    created = client.post("/api/v1/droplets", {**DROPLET, "cluster_id": cluster["id"], "provider": provider})
    assert created.status_code == 201 and created.json["droplet"]["status"] == "provisioning"
    run_jobs()
    droplet = client.get(f"/api/v1/droplets/{created.json['droplet']['id']}").json["droplet"]
    assert droplet["status"] == "active" and droplet["ip_address"].startswith("10.")
    assert job(client, created.json["job_id"])["status"] == "completed"
    [row] = db.query("SELECT provider_instance_id FROM droplets WHERE id = %s", (droplet["id"],))
    # digitalocean has no real driver here: the simulated one runs it, and its instance ids say so
    assert row["provider_instance_id"].startswith("sim-" if provider == "simulated" else "sim-digitalocean-")


def test_every_catalogue_provider_has_a_driver_and_an_unknown_one_is_refused_at_request_time(client, make_cluster):
    for row in db.query("SELECT name FROM providers"):
        assert get_provider(row["name"]).name == row["name"]
    with pytest.raises(ProviderError):
        get_provider("nowhere")
    response = client.post("/api/v1/droplets", {**DROPLET, "cluster_id": make_cluster()["id"], "provider": "azure"})
    assert response.status_code == 400 and "provider" in response.json["error"]


def test_deleting_a_droplet_with_a_machine_terminates_it_through_a_job(client, make_cluster, run_jobs, recording):
    cluster = make_cluster()
    created = client.post("/api/v1/droplets", {**DROPLET, "cluster_id": cluster["id"]}).json
    run_jobs()
    [row] = db.query("SELECT provider_instance_id FROM droplets WHERE id = %s", (created["droplet"]["id"],))
    deleted = client.delete(f"/api/v1/droplets/{created['droplet']['id']}")
    assert deleted.status_code == 200 and deleted.json["message"] == "Droplet deleted"
    assert client.get(f"/api/v1/droplets/{created['droplet']['id']}").json["droplet"]["status"] == "deleting"
    assert client.delete(f"/api/v1/droplets/{created['droplet']['id']}").status_code == 409  # one job is enough
    run_jobs()
    done = job(client, deleted.json["job_id"])
    assert done["type"] == "terminate" and done["status"] == "completed"
    assert json.loads(done["result"])["instance_id"] == row["provider_instance_id"]
    assert recording.terminated == [row["provider_instance_id"]]
    assert client.get(f"/api/v1/droplets/{created['droplet']['id']}").status_code == 404


def test_a_refused_termination_fails_its_job_and_keeps_the_droplet_visible(client, make_cluster, run_jobs, recording):
    cluster = make_cluster()
    created = client.post("/api/v1/droplets", {**DROPLET, "cluster_id": cluster["id"]}).json
    run_jobs()
    recording.refuse = True
    deleted = client.delete(f"/api/v1/droplets/{created['droplet']['id']}").json
    run_jobs()
    assert job(client, deleted["job_id"])["status"] == "failed"
    assert client.get(f"/api/v1/droplets/{created['droplet']['id']}").json["droplet"]["status"] == "error"


def test_deleting_a_cluster_terminates_its_machines_then_deletes_it(client, make_cluster, run_jobs, recording):
    cluster = make_cluster()
    for _ in range(2):
        client.post("/api/v1/droplets", {**DROPLET, "cluster_id": cluster["id"]})
    run_jobs()
    instances = sorted(r["provider_instance_id"] for r in
                       db.query("SELECT provider_instance_id FROM droplets WHERE cluster_id = %s", (cluster["id"],)))
    deleted = client.delete(f"/api/v1/clusters/{cluster['id']}")
    assert deleted.status_code == 200 and len(deleted.json["job_ids"]) == 2
    assert client.get(f"/api/v1/clusters/{cluster['id']}").json["cluster"]["status"] == "deleting"
    assert client.delete(f"/api/v1/clusters/{cluster['id']}").status_code == 409  # once is enough
    run_jobs()
    assert sorted(recording.terminated) == instances
    assert client.get(f"/api/v1/clusters/{cluster['id']}").status_code == 404  # the last job deleted it


def test_a_cluster_without_machines_is_deleted_at_once(client, make_cluster):
    cluster = make_cluster()
    client.post("/api/v1/droplets", {**DROPLET, "cluster_id": cluster["id"]})  # never provisioned: no machine
    deleted = client.delete(f"/api/v1/clusters/{cluster['id']}")
    assert deleted.json == {"message": "Cluster deleted successfully"}
    assert client.get(f"/api/v1/clusters/{cluster['id']}").status_code == 404
