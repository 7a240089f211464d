"""Hello, the provider catalogue and scheduling (issue 8): routes over the real database, and the
scheduler's choice table on the pure decision function."""
from __future__ import annotations

from decimal import Decimal

import pytest
from control_plane_support import SEEDED, catalog, control_plane_snapshot  # noqa: F401 - fixture

from chalicelib.services.scheduling import choose


def test_hello_greets_by_name(client):
    response = client.post("/api/v1/hello", {"name": "  Ada "})
    assert response.status_code == 200 and response.json == {"message": "Hello, Ada from ClusterGenie!"}
    # As the original: the name is optional (the console's "online" check needs only a 2xx).
    assert client.post("/api/v1/hello", {}).json == {"message": "Hello,  from ClusterGenie!"}


@pytest.mark.parametrize(("body", "field"), [({"name": 5}, "name"), ({"name": "a", "x": 1}, "x")])
def test_hello_refuses_bad_input(client, body, field):
    response = client.post("/api/v1/hello", body)
    assert response.status_code == 400 and field in response.json["error"]


def test_providers_are_seeded_by_the_migration(client, catalog):
    listed = client.get("/api/v1/providers")
    assert listed.status_code == 200
    assert {p["name"]: p for p in listed.json["items"]} == {
        name: {"id": name, "name": name, **{k: v for k, v in p.items() if k != "price_per_hour"},
               "price_per_hour": float(p["price_per_hour"])}
        for name, p in SEEDED.items()
    }


def test_post_provider_creates_then_replaces(client, catalog):
    body = {"name": "hetzner", "regions": ["fra1", "ams3"], "capacity": 10, "used": 2,
            "classes": ["s-1vcpu-1gb"], "price_per_hour": 0.0125}
    created = client.post("/api/v1/providers", body)
    assert created.status_code == 201 and created.json == {"id": "hetzner", **body}
    replaced = client.post("/api/v1/providers", {**body, "used": 10, "price_per_hour": "0.02"})
    assert replaced.json["used"] == 10 and replaced.json["price_per_hour"] == 0.02
    assert [p for p in client.get("/api/v1/providers").json["items"] if p["name"] == "hetzner"] == [replaced.json]
    # The original console's form has no price: the provider gets the original's default droplet-hour price.
    unpriced = client.post("/api/v1/providers", {"name": "console", "regions": ["nyc3"], "capacity": 3,
                                                 "classes": ["s-1vcpu-1gb"]})
    assert unpriced.status_code == 201 and unpriced.json["price_per_hour"] == 0.05


GOOD_PROVIDER = {"name": "p1", "regions": ["nyc3"], "capacity": 5, "classes": ["s-1vcpu-1gb"], "price_per_hour": 0.05}


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "Bad Name"}, "name"), ({"regions": []}, "regions"), ({"regions": ["mars1"]}, "regions"),
    ({"capacity": -1}, "capacity"), ({"capacity": "5"}, "capacity"), ({"used": 6}, "used"),
    ({"classes": ["huge"]}, "classes"), ({"price_per_hour": 0}, "price_per_hour"),
    ({"price_per_hour": "abc"}, "price_per_hour"), ({"price_per_hour": 0.1234567}, "price_per_hour"),
    ({"price_per_hour": True}, "price_per_hour"), ({"extra": 1}, "extra"),
])
def test_post_provider_refuses_bad_input_and_writes_nothing(client, catalog, change, field):
    before = control_plane_snapshot()
    response = client.post("/api/v1/providers", {**GOOD_PROVIDER, **change})
    assert response.status_code == 400 and field in response.json["error"], response.json
    assert control_plane_snapshot() == before


def test_schedule_picks_the_cheapest_provider_in_the_clusters_region(client, catalog, make_cluster):
    cluster = make_cluster(region="nyc3")
    response = client.post("/api/v1/schedule", {"cluster_id": cluster["id"]})
    assert response.status_code == 200
    body = response.json
    assert (body["provider"]["name"], body["region"]) == ("simulated", "nyc3")  # the full entry, as the original
    assert body["reasons"] == ["simulated: lowest price among eligible providers (0.050000/h)",
                               "region nyc3: the cluster's own region"]
    assert [c["provider"] for c in body["candidates"]] == ["simulated", "digitalocean", "aws"]


def test_schedule_honours_preferred_and_avoided_providers(client, catalog, make_cluster):
    cluster = make_cluster(region="nyc3")
    preferred = client.post("/api/v1/schedule", {"cluster_id": cluster["id"], "preferred_provider": "aws"}).json
    assert (preferred["provider"]["name"], preferred["region"]) == ("aws", "nyc1")
    assert preferred["reasons"][1] == "region nyc1: aws does not serve the cluster's region nyc3"
    avoided = client.post("/api/v1/schedule", {"cluster_id": cluster["id"], "avoid_provider": "simulated"}).json
    assert avoided["provider"]["name"] == "digitalocean"
    # The original console sends "" for a provider it does not prefer or avoid: the same as not sending it.
    blank = client.post("/api/v1/schedule", {"cluster_id": cluster["id"], "preferred_provider": "", "avoid_provider": ""})
    assert blank.status_code == 200 and blank.json["provider"]["name"] == "simulated"
    assert avoided["candidates"][0] == {"provider": "simulated", "eligible": False, "price_per_hour": 0.05,
                                        "region": "nyc3", "reason": "avoided by the request"}


def test_schedule_with_no_eligible_provider_is_409(client, catalog, make_cluster):
    cluster = make_cluster()
    for name, p in SEEDED.items():
        client.post("/api/v1/providers", {"name": name, **p, "used": p["capacity"]})
    response = client.post("/api/v1/schedule", {"cluster_id": cluster["id"]})
    assert response.status_code == 409 and "no capacity" in response.json["error"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 400, "cluster_id"),
    ({"cluster_id": "c", "preferred_provider": "nope"}, 400, "preferred_provider"),
    ({"cluster_id": "c", "avoid_provider": "nope"}, 400, "avoid_provider"),
    ({"cluster_id": "c", "preferred_provider": "aws", "avoid_provider": "aws"}, 400, "preferred_provider"),
    ({"cluster_id": "c", "extra": 1}, 400, "extra"),
    ({"cluster_id": "cluster-missing"}, 404, "Cluster"),
])
def test_schedule_bad_input(client, catalog, make_cluster, body, status, field):
    if body.get("cluster_id") == "c":
        body = {**body, "cluster_id": make_cluster()["id"]}
    response = client.post("/api/v1/schedule", body)
    assert response.status_code == status and field in response.json["error"], response.json


def _p(name, price, capacity=10, used=0, regions=("nyc3", "ams3")):
    return {"name": name, "price_per_hour": Decimal(price), "capacity": capacity, "used": used,
            "regions": list(regions)}


# (providers, cluster region, preferred, avoid) -> (provider, region, first reason)
CHOICES = [
    pytest.param([_p("a", "0.05"), _p("b", "0.04")], "nyc3", None, None,
                 ("b", "nyc3", "b: lowest price among eligible providers (0.04/h)"), id="cheapest wins"),
    pytest.param([_p("a", "0.05"), _p("b", "0.05")], "nyc3", None, None,
                 ("a", "nyc3", "a: lowest price among eligible providers (0.05/h)"), id="tie broken by name"),
    pytest.param([_p("a", "0.05"), _p("b", "0.04", used=10)], "nyc3", None, None,
                 ("a", "nyc3", "a: lowest price among eligible providers (0.05/h)"), id="full provider skipped"),
    pytest.param([_p("a", "0.05"), _p("b", "0.04")], "nyc3", "a", None,
                 ("a", "nyc3", "a: preferred by the request and eligible"), id="preferred beats price"),
    pytest.param([_p("a", "0.05", used=10), _p("b", "0.04")], "nyc3", "a", None,
                 ("b", "nyc3", "preferred provider a skipped: no capacity (10 of 10 used)"), id="preferred but full"),
    pytest.param([_p("a", "0.05"), _p("b", "0.04")], "nyc3", None, "b",
                 ("a", "nyc3", "a: lowest price among eligible providers (0.05/h)"), id="avoided skipped"),
    pytest.param([_p("a", "0.05", regions=("lon1", "fra1"))], "nyc3", None, None,
                 ("a", "lon1", "a: lowest price among eligible providers (0.05/h)"), id="other region"),
    pytest.param([_p("a", "0.05", used=10), _p("b", "0.04")], "nyc3", None, "b",
                 (None, None, "no provider is eligible"), id="nothing eligible"),
    pytest.param([], "nyc3", None, None, (None, None, "no provider is eligible"), id="empty catalogue"),
]


@pytest.mark.parametrize(("providers", "region", "preferred", "avoid", "expected"), CHOICES)
def test_scheduler_choice_table(providers, region, preferred, avoid, expected):
    choice = choose(providers, region, preferred, avoid)
    assert (choice.provider, choice.region, choice.reasons[0]) == expected
    assert len(choice.candidates) == len(providers)  # every provider is explained
    assert all(c["reason"] for c in choice.candidates)
