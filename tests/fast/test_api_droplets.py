"""Droplets over the real database: creation (with and without a cluster), reads, deletes, bad input."""
from __future__ import annotations

import re

import pytest

GOOD = {"name": "web-1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-22-04-x64"}


def test_create_get_list_delete_droplet(client, make_cluster):
    cluster = make_cluster()
    created = client.post("/api/v1/droplets", {**GOOD, "cluster_id": cluster["id"], "provider": "simulated"})
    assert created.status_code == 201 and set(created.json) == {"droplet", "message"}
    droplet = created.json["droplet"]
    assert re.fullmatch(r"droplet-[0-9a-f-]{36}", droplet["id"])
    assert droplet["status"] == "provisioning" and droplet["cluster_id"] == cluster["id"]
    assert droplet["ip_address"] is None and droplet["provider"] == "simulated"

    assert client.get(f"/api/v1/droplets/{droplet['id']}").json == {"droplet": droplet, "message": "Droplet retrieved"}
    assert client.get("/api/v1/droplets").json == {"droplets": [droplet]}
    assert client.get(f"/api/v1/droplets?cluster_id={cluster['id']}").json == {"droplets": [droplet]}
    assert client.get("/api/v1/droplets?cluster_id=cluster-other").json == {"droplets": []}

    deleted = client.delete(f"/api/v1/droplets/{droplet['id']}")
    assert deleted.status_code == 200 and deleted.json == {"message": "Droplet deleted"}
    assert client.get(f"/api/v1/droplets/{droplet['id']}").status_code == 404


def test_standalone_droplet_defaults(client):
    created = client.post("/api/v1/droplets", {"name": "solo", "region": "ams3", "size": "s-2vcpu-4gb"})
    assert created.status_code == 201
    assert created.json["droplet"]["cluster_id"] is None
    assert created.json["droplet"]["image"] == "ubuntu-22-04-x64"
    assert created.json["droplet"]["provider"] == "simulated"


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


def test_unknown_query_parameter_is_400(client):
    response = client.get("/api/v1/droplets?cluster=abc")
    assert response.status_code == 400 and "cluster" in response.json["error"]


def test_missing_droplets_are_404(client, snapshot):
    before = snapshot()
    assert client.get("/api/v1/droplets/droplet-nope").status_code == 404
    assert client.delete("/api/v1/droplets/droplet-nope").json == {"error": "Droplet not found"}
    assert snapshot() == before
