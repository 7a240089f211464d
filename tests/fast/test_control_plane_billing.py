"""Billing (issue 8): Decimal arithmetic over the droplets' sizes, the catalogue's prices and the time each
droplet has been active, checked against values computed by hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from control_plane_support import add_droplet, catalog  # noqa: F401 - fixture

from chalicelib.services.billing import BillingService, money

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def hours_ago(hours: float, now: dt.datetime = NOW) -> dt.datetime:
    return now - dt.timedelta(hours=hours)


def test_cluster_bill_by_hand(catalog, make_cluster):
    cluster = make_cluster()
    cid = cluster["id"]
    # simulated 0.05/h x1 (s-1vcpu-1gb) for 10 h            -> rate 0.05, accrued 0.50
    add_droplet(cid, provider="simulated", size="s-1vcpu-1gb", created_at=hours_ago(10))
    # digitalocean 0.06/h x4 (s-2vcpu-4gb) for 2.5 h         -> rate 0.24, accrued 0.60
    add_droplet(cid, provider="digitalocean", size="s-2vcpu-4gb", created_at=hours_ago(2.5))
    # aws 0.08/h x16 (s-8vcpu-16gb) for 30 min               -> rate 1.28, accrued 0.64
    add_droplet(cid, provider="aws", size="s-8vcpu-16gb", created_at=hours_ago(0.5))
    # not in the catalogue: the default 0.05/h, x2 (s-1vcpu-2gb) for 1 h -> rate 0.10, accrued 0.10
    add_droplet(cid, provider="legacy", size="s-1vcpu-2gb", created_at=hours_ago(1))
    # not billed: still provisioning, and in error
    add_droplet(cid, status="provisioning", created_at=hours_ago(5))
    add_droplet(cid, status="error", created_at=hours_ago(5))

    bill = BillingService().cluster_bill(cid, now=NOW)
    assert (bill.droplet_count, bill.hourly_cost, bill.monthly_cost, bill.accrued_cost) == (
        4, "1.6700", "1202.40", "1.84")  # 1.67 = 0.05 + 0.24 + 1.28 + 0.10 (hourly: 4 decimals); 1202.40 = 1.67 x 720
    # oldest first
    assert [(d.provider, d.hourly_cost, d.active_hours, d.accrued_cost) for d in bill.droplets] == [
        ("simulated", "0.0500", "10.00", "0.50"), ("digitalocean", "0.2400", "2.50", "0.60"),
        ("legacy", "0.1000", "1.00", "0.10"), ("aws", "1.2800", "0.50", "0.64")]


def test_rounding_happens_once_on_the_totals(client, catalog, make_cluster):
    client.post("/api/v1/providers", {"name": "cheap", "regions": ["nyc3"], "capacity": 10,
                                      "classes": ["s-1vcpu-1gb"], "price_per_hour": 0.005})
    cid = make_cluster()["id"]
    for _ in range(3):
        add_droplet(cid, provider="cheap", created_at=hours_ago(1))
    bill = BillingService().cluster_bill(cid, now=NOW)
    # 3 x 0.005 = 0.015 (hourly: the original's 4 decimals); the 2-decimal totals round half up once, on the
    # total (rounding each part first would give 0.03 or 0.00)
    assert (bill.hourly_cost, bill.monthly_cost, bill.accrued_cost) == ("0.0150", "10.80", "0.02")
    assert [d.hourly_cost for d in bill.droplets] == ["0.0050"] * 3


@pytest.mark.parametrize(("value", "text"), [(Decimal("0.125"), "0.13"), (Decimal("0.124999"), "0.12"),
                                             (Decimal("0.1") + Decimal("0.2"), "0.30"), (Decimal(0), "0.00")])
def test_money_format(value, text):
    assert money(value) == text


def test_billing_route_happy_path_and_empty_cluster(client, catalog, make_cluster):
    cid = make_cluster()["id"]
    empty = client.get(f"/api/v1/billing/cluster?cluster_id={cid}")
    assert empty.status_code == 200 and empty.json == {
        "cluster_id": cid, "droplet_count": 0, "hourly_cost": "0.0000", "monthly_cost": "0.00",
        "accrued_cost": "0.00", "droplets": []}
    add_droplet(cid, provider="simulated", size="s-2vcpu-2gb",
                created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))
    bill = client.get(f"/api/v1/billing/cluster?cluster_id={cid}").json
    # 0.05 x 3 = 0.15/h; 0.15 x 720 = 108.00/month; 2 h -> 0.30
    assert (bill["droplet_count"], bill["hourly_cost"], bill["monthly_cost"], bill["accrued_cost"]) == (
        1, "0.1500", "108.00", "0.30")


@pytest.mark.parametrize(("query", "status", "field"), [
    ("", 400, "cluster_id"), ("?cluster_id=", 400, "cluster_id"), ("?cluster_id=x&y=1", 404, "Cluster"),
    ("?cluster_id=cluster-missing", 404, "Cluster"),
])
def test_billing_bad_input(client, query, status, field):
    response = client.get(f"/api/v1/billing/cluster{query}")
    assert response.status_code == status and field in response.json["error"], response.json
