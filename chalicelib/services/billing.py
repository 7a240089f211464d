"""Billing: what a cluster's droplets cost, in `Decimal` from end to end (never a float).

A droplet-hour costs its provider's catalogue price times its size's factor (the droplet sizes are
priced 1:2:3:4:8:16, as the sizes' list prices are); a provider missing from the catalogue costs the
original's default $0.05. Only `active` droplets are billed. `hourly_cost` is the sum of their rates,
`monthly_cost` that times a 720-hour month (24 x 30, the original's month), `accrued_cost` each rate
times the time the droplet has existed. Costs are strings with two decimals, rounded half up, as the
original's `%.2f`; rounding happens once, on the totals, never on the parts that are summed.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from chalicelib.errors import NotFoundError
from chalicelib.models.control_plane import BillingReport, DropletCost
from chalicelib.repositories import ClusterRepository, DropletRepository
from chalicelib.repositories.provider_catalog import ProviderCatalogRepository

DEFAULT_PRICE_PER_HOUR = Decimal("0.05")
HOURS_PER_MONTH = Decimal(720)
SIZE_FACTORS: dict[str, Decimal] = {
    "s-1vcpu-1gb": Decimal(1), "s-1vcpu-2gb": Decimal(2), "s-2vcpu-2gb": Decimal(3),
    "s-2vcpu-4gb": Decimal(4), "s-4vcpu-8gb": Decimal(8), "s-8vcpu-16gb": Decimal(16),
}
_CENTS = Decimal("0.01")
_SECONDS_PER_HOUR = Decimal(3600)


def money(value: Decimal, places: Decimal = _CENTS) -> str:
    """Two decimals (or `places`), half up: `Decimal("0.125")` -> `"0.13"`."""
    return str(value.quantize(places, rounding=ROUND_HALF_UP))


_HOURLY = Decimal("0.0001")  # the original's hourly_cost has four decimals (monthly_cost two)


def droplet_rate(size: str, provider: str, prices: dict[str, Decimal]) -> Decimal:
    """The droplet's cost per hour (an unknown size counts as the smallest)."""
    return prices.get(provider, DEFAULT_PRICE_PER_HOUR) * SIZE_FACTORS.get(size, Decimal(1))


def _parse(ts: str | dt.datetime) -> dt.datetime:
    if isinstance(ts, dt.datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


class BillingService:
    def __init__(self, clusters: ClusterRepository | None = None, droplets: DropletRepository | None = None,
                 catalog: ProviderCatalogRepository | None = None) -> None:
        self.clusters = clusters or ClusterRepository()
        self.droplets = droplets or DropletRepository()
        self.catalog = catalog or ProviderCatalogRepository()

    def cluster_bill(self, cluster_id: str, now: dt.datetime | None = None) -> BillingReport:
        """The cluster's costs at `now` (default: the current time); NotFoundError when it is missing."""
        if not self.clusters.exists(cluster_id):
            raise NotFoundError("Cluster not found")
        now = now or dt.datetime.now(dt.timezone.utc)
        prices = {name: Decimal(p) for name, p in self.catalog.prices().items()}
        hourly = accrued = Decimal(0)
        lines = []
        for d in self.droplets.list(cluster_id):
            if d["status"] != "active":
                continue
            rate = droplet_rate(d["size"], d["provider"], prices)
            seconds = max(0, int((now - _parse(d["created_at"])).total_seconds()))
            hours = Decimal(seconds) / _SECONDS_PER_HOUR
            cost = rate * hours
            hourly += rate
            accrued += cost
            lines.append(DropletCost(droplet_id=d["id"], provider=d["provider"], size=d["size"],
                                     hourly_cost=money(rate, _HOURLY), active_hours=money(hours), accrued_cost=money(cost)))
        return BillingReport(cluster_id=cluster_id, droplet_count=len(lines), hourly_cost=money(hourly, _HOURLY),
                             monthly_cost=money(hourly * HOURS_PER_MONTH), accrued_cost=money(accrued),
                             droplets=lines)
