"""Droplet migrations (issue 8): POST /migrations enqueues a `migrate` job; the job's work creates the
replacement on the target provider before it retires the old droplet, so the cluster never has fewer
active droplets."""
from __future__ import annotations

import json

from dataclasses import dataclass

import pytest
from control_plane_support import add_droplet, catalog, control_plane_snapshot  # noqa: F401 - fixture

from chalicelib.repositories import DropletRepository
from chalicelib.repositories.provider_catalog import ProviderCatalogRepository
from chalicelib.services.droplet_migration import DropletMigrationService, MigrationFailed


@dataclass(frozen=True)
class Instance:
    instance_id: str
    ip_address: str


class FakeMachines:
    """Droplet providers that record what they were asked to do (and can refuse launches)."""

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.launched, self.terminated = [], []

    def __call__(self, name):
        return self

    def launch(self, droplet):
        if self.refuse:
            raise RuntimeError("quota exceeded")
        self.launched.append(droplet["id"])
        return Instance(f"i-{len(self.launched)}", "10.0.0.9")

    def terminate(self, droplet):
        self.terminated.append(droplet["id"])


def active(cluster_id):
    return [d for d in DropletRepository().list(cluster_id) if d["status"] == "active"]


def test_post_migration_enqueues_a_migrate_job(client, catalog, make_cluster, job_queue):
    cid = make_cluster()["id"]
    droplet = add_droplet(cid)
    response = client.post("/api/v1/migrations", {"droplet_id": droplet["id"], "target_provider": "digitalocean"})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["ok"] is True and (body["droplet_id"], body["target_provider"]) == (droplet["id"], "digitalocean")
    assert job_queue.sent_job_ids() == [body["job_id"]]
    got = client.get(f"/api/v1/jobs/{body['job_id']}")
    assert got.status_code == 200, (got.status_code, got.json)
    job = got.json["job"]
    assert job["type"] == "migrate" and json.loads(job["parameters"]) == {
        "cluster_id": cid, "droplet_id": droplet["id"], "target_provider": "digitalocean"}


def test_migration_creates_on_the_target_then_retires_the_old_droplet(client, catalog, make_cluster):
    cid = make_cluster()["id"]
    old = add_droplet(cid, region="ams3", size="s-2vcpu-4gb")
    add_droplet(cid)
    machines, checkpoints = FakeMachines(), []
    service = DropletMigrationService(provider_for=machines)
    before = len(active(cid))
    result = service.run_job({"droplet_id": old["id"], "target_provider": "aws"}, record=checkpoints.append)

    new = DropletRepository().get(result["new_droplet_id"])
    assert (new["provider"], new["status"], new["cluster_id"], new["size"]) == ("aws", "active", cid, "s-2vcpu-4gb")
    assert new["region"] == "nyc1"  # aws does not serve ams3: its first region
    assert DropletRepository().get(old["id"])["status"] == "deleted"
    assert machines.launched == [new["id"]] and machines.terminated == [old["id"]]
    assert checkpoints == [{"new_droplet_id": new["id"]}]
    assert len(active(cid)) == before
    assert ProviderCatalogRepository().get("aws")["used"] == 1
    # a re-run from the checkpoint creates nothing more and moves no more usage
    again = service.run_job({"droplet_id": old["id"], "target_provider": "aws"}, checkpoint=checkpoints[0])
    assert again["new_droplet_id"] == new["id"] and machines.launched == [new["id"]]
    assert ProviderCatalogRepository().get("aws")["used"] == 1 and len(active(cid)) == before


def test_a_failed_launch_keeps_the_old_droplet(client, catalog, make_cluster):
    cid = make_cluster()["id"]
    old = add_droplet(cid)
    service = DropletMigrationService(provider_for=FakeMachines(refuse=True))
    with pytest.raises(MigrationFailed, match="quota exceeded"):
        service.run_job({"droplet_id": old["id"], "target_provider": "aws"})
    assert [d["id"] for d in active(cid)] == [old["id"]]
    assert sorted(d["status"] for d in DropletRepository().list(cid)) == ["active", "error"]


@pytest.mark.parametrize(("setup", "body", "status", "field"), [
    (None, {"target_provider": "aws"}, 400, "droplet_id"),
    (None, {"droplet_id": "x"}, 400, "target_provider"),
    (None, {"droplet_id": "x", "target_provider": "aws", "extra": 1}, 400, "extra"),
    (None, {"droplet_id": "droplet-nope", "target_provider": "aws"}, 404, "Droplet"),
    ("active", {"target_provider": "nope"}, 404, "Provider"),
    ("active", {"target_provider": "simulated"}, 409, "already runs on simulated"),
    ("provisioning", {"target_provider": "aws"}, 409, "only active droplets"),
    ("standalone", {"target_provider": "aws"}, 400, "droplet_id"),
    ("active-2gb", {"target_provider": "aws"}, 409, "does not offer size"),
])
def test_bad_migrations(client, catalog, make_cluster, job_queue, setup, body, status, field):
    if setup is not None:
        if setup == "standalone":
            droplet = DropletRepository().create(name="solo", region="nyc3", size="s-1vcpu-1gb",
                                                 image="ubuntu-22-04-x64", provider="simulated", status="active")
        else:
            droplet = add_droplet(make_cluster()["id"], status=setup.split("-")[0],
                                  size="s-1vcpu-2gb" if setup.endswith("2gb") else "s-1vcpu-1gb")
        body = {"droplet_id": droplet["id"], **body}
    before = control_plane_snapshot()
    response = client.post("/api/v1/migrations", body)
    assert response.status_code == status and field in response.json["error"], response.json
    assert control_plane_snapshot() == before and job_queue.messages == []


def test_a_full_target_is_409(client, catalog, make_cluster, job_queue):
    droplet = add_droplet(make_cluster()["id"])
    client.post("/api/v1/providers", {"name": "tiny", "regions": ["nyc3"], "capacity": 1, "used": 1,
                                      "classes": ["s-1vcpu-1gb"], "price_per_hour": 0.01})
    response = client.post("/api/v1/migrations", {"droplet_id": droplet["id"], "target_provider": "tiny"})
    assert response.status_code == 409 and "no free capacity" in response.json["error"]
