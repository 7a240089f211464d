"""Shared by the control-plane tests (issue 8): the seeded catalogue, snapshots of the control-plane
tables, and droplets put straight into a known state."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from db_snapshot import table_snapshot

from chalicelib import db
from chalicelib.repositories import DropletRepository

CONTROL_PLANE_TABLES = ("policies", "autoscaling_state", "providers", "deployments", "deployment_steps")
ALL_SIZES = ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "s-8vcpu-16gb"]
# What migrations/0003_control_plane.sql seeds.
SEEDED = {
    "simulated": {"regions": ["nyc1", "nyc3", "sfo2", "sfo3", "tor1", "ams3", "lon1", "fra1", "sgp1", "blr1", "syd1"],
                  "capacity": 1000, "used": 0, "classes": ALL_SIZES, "price_per_hour": "0.050000"},
    "digitalocean": {"regions": ["nyc1", "nyc3", "sfo3", "tor1", "ams3", "lon1", "fra1", "sgp1", "blr1", "syd1"],
                     "capacity": 100, "used": 0, "classes": ALL_SIZES, "price_per_hour": "0.060000"},
    "aws": {"regions": ["nyc1", "sfo2", "lon1", "fra1", "sgp1", "syd1"], "capacity": 50, "used": 0,
            "classes": ["s-1vcpu-1gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "s-8vcpu-16gb"], "price_per_hour": "0.080000"},
}


def reset_catalog() -> None:
    """Back to the seeded catalogue (tests add and change providers)."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM providers")
        for name, p in SEEDED.items():
            cur.execute("INSERT INTO providers (name, regions, capacity, used, classes, price_per_hour) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        (name, json.dumps(p["regions"]), p["capacity"], p["used"], json.dumps(p["classes"]),
                         p["price_per_hour"]))


@pytest.fixture
def catalog(clean_db):  # noqa: ANN001 - fixture
    reset_catalog()
    yield
    reset_catalog()


def control_plane_snapshot() -> dict[str, tuple[int, Any]]:
    """Row count and checksum of every control-plane table (equal before and after: nothing written)."""
    return table_snapshot(CONTROL_PLANE_TABLES)


def add_droplet(cluster_id: str, *, provider: str = "simulated", size: str = "s-1vcpu-1gb",
                status: str = "active", created_at: dt.datetime | None = None, region: str = "nyc3") -> dict[str, Any]:
    """A droplet row in `status`, optionally created at a given (UTC) time."""
    droplet = DropletRepository().create(name="d", region=region, size=size, image="ubuntu-22-04-x64",
                                         provider=provider, cluster_id=cluster_id, status=status)
    if created_at is not None:
        with db.transaction() as cur:
            cur.execute("UPDATE droplets SET created_at = %s WHERE id = %s",
                        (created_at.astimezone(dt.timezone.utc).replace(tzinfo=None), droplet["id"]))
    return droplet


def race_evaluate(cluster_id: str, barrier: Any, results: Any) -> None:
    """One racing evaluation in its own process (its own MySQL connection, as separate Lambda instances
    have): the state read is forced stale and every racer waits at `barrier` before claiming."""
    from chalicelib.jobs_queue import InMemoryJobQueue, set_job_queue
    from chalicelib.repositories.policies import PolicyRepository
    from chalicelib.services.autoscaling import AutoscalingService

    set_job_queue(InMemoryJobQueue())
    real_claim = PolicyRepository.claim_scale

    def claim(self, cid, cooldown):  # noqa: ANN001
        barrier.wait(30)
        return real_claim(self, cid, cooldown)

    PolicyRepository.last_scaled_at = lambda self, cid: None
    PolicyRepository.claim_scale = claim
    try:
        results.put(len(AutoscalingService().evaluate(cluster_id).actions))
    except Exception as exc:  # reported to the parent
        results.put(repr(exc))
