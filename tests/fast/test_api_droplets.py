"""Droplets over the real database: creation (with and without a cluster), reads, deletes, bad input."""
from __future__ import annotations

import json
import re

import pytest

GOOD = {"name": "web-1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-22-04-x64"}


def test_create_get_list_delete_droplet(client, make_cluster):
    cluster = make_cluster()
    created = client.post("/api/v1/droplets", {**GOOD, "cluster_id": cluster["id"], "provider": "simulated"})
    assert created.status_code == 201 and set(created.json) == {"droplet", "message", "job_id"}
    droplet = created.json["droplet"]
    assert re.fullmatch(r"droplet-[0-9a-f-]{36}", droplet["id"])
    assert droplet["status"] == "provisioning" and droplet["cluster_id"] == cluster["id"]
    assert "ip_address" not in droplet and droplet["provider"] == "simulated"  # omitted until active, as the original
    assert droplet["cluster"]["id"] == cluster["id"] and droplet["cluster"]["name"] == cluster["name"]
    assert droplet["cluster"]["droplets"] == [droplet["id"]]

    assert client.get(f"/api/v1/droplets/{droplet['id']}").json == {"droplet": droplet, "message": "Droplet retrieved"}
    assert client.get("/api/v1/droplets").json == {"droplets": [droplet]}
    assert client.get(f"/api/v1/droplets?cluster_id={cluster['id']}").json == {"droplets": [droplet]}
    assert client.get("/api/v1/droplets?cluster_id=&_=123").json == {"droplets": [droplet]}  # empty = all
    assert client.get("/api/v1/droplets?cluster_id=cluster-other").json == {"droplets": []}

    deleted = client.delete(f"/api/v1/droplets/{droplet['id']}")
    assert deleted.status_code == 200 and deleted.json == {"message": "Droplet deleted"}
    assert client.get(f"/api/v1/droplets/{droplet['id']}").status_code == 404


def test_droplet_defaults_and_its_provision_job(client, make_cluster, job_queue):
    cluster = make_cluster()
    created = client.post("/api/v1/droplets", {"name": "solo", "region": "ams3", "size": "s-2vcpu-4gb",
                                               "cluster_id": cluster["id"]})
    assert created.status_code == 201
    assert created.json["droplet"]["image"] == "ubuntu-22-04-x64"
    assert created.json["droplet"]["provider"] == "simulated"
    # The droplet is provisioned by a job of its cluster, queued with it (the job worker tests run it).
    job = client.get(f"/api/v1/jobs/{created.json['job_id']}").json["job"]
    assert job["type"] == "provision" and job["cluster_id"] == cluster["id"] and job["status"] == "queued"
    assert json.loads(job["parameters"]) == {"cluster_id": cluster["id"], "droplet_id": created.json["droplet"]["id"]}
    assert job_queue.sent_job_ids() == [job["id"]]


def test_a_droplet_needs_a_cluster(client, snapshot):
    # The original accepted a droplet without a cluster, which then stayed `provisioning`: jobs act on a cluster.
    before = snapshot()
    response = client.post("/api/v1/droplets", {"name": "solo", "region": "ams3", "size": "s-2vcpu-4gb"})
    assert response.status_code == 400 and "cluster_id" in response.json["error"]
    assert snapshot() == before


def test_droplet_for_a_missing_cluster_is_404_not_a_foreign_key_500(client, make_cluster, snapshot):
    make_cluster()
    before = snapshot()
    response = client.post("/api/v1/droplets", {**GOOD, "cluster_id": "cluster-does-not-exist"})
    assert response.status_code == 404 and response.json == {"error": "Cluster not found"}
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "ssh_keys": []}, "ssh_keys"),
        ({**GOOD, "name": ""}, "name"),
        ({**GOOD, "name": "x" * 256}, "name"),
        ({**GOOD, "name": None}, "name"),
        ({**GOOD, "region": "moon"}, "region"),
        ({**GOOD, "size": "xxl"}, "size"),
        ({**GOOD, "size": 1}, "size"),
        ({**GOOD, "provider": "azure"}, "provider"),
        ({**GOOD, "image": "bad image; rm -rf /"}, "image"),
        ({**GOOD, "cluster_id": 7}, "cluster_id"),
        ({k: v for k, v in GOOD.items() if k != "size"}, "size"),
    ],
)
def test_create_droplet_rejects_bad_input(client, make_cluster, snapshot, body, field):
    make_cluster()
    before = snapshot()
    response = client.post("/api/v1/droplets", body)
    assert response.status_code == 400 and field in response.json["error"]
    assert snapshot() == before


def test_malformed_and_oversized_droplet_bodies(client, snapshot):
    before = snapshot()
    assert client.post("/api/v1/droplets", raw=b"{oops").status_code == 400
    assert client.post("/api/v1/droplets", raw=b'{"name": "' + b"y" * 70_000 + b'"}').status_code == 413
    assert snapshot() == before


def test_unknown_query_parameters_are_ignored_as_the_original_did(client):
    # Cache busters and the like (`?_=123`) are ignored on every route, as the original did.
    response = client.get("/api/v1/droplets?cluster=abc&_=123")
    assert response.status_code == 200 and response.json == {"droplets": []}


def test_missing_droplets_are_404(client, snapshot):
    before = snapshot()
    assert client.get("/api/v1/droplets/droplet-nope").status_code == 404
    assert client.delete("/api/v1/droplets/droplet-nope").json == {"error": "Droplet not found"}
    assert snapshot() == before
