"""Scheduling: which catalogue provider and region a cluster should be placed on, and why.

`choose` is pure (a table of providers in, a decision out), so the rules are tested as a table;
`SchedulingService` reads the catalogue and the cluster and calls it.

Rules, in order: an avoided provider is never chosen; a provider with no free capacity (used >= capacity)
is skipped; an eligible preferred provider wins; otherwise the cheapest eligible provider wins (ties by
name, so the choice is deterministic). The region is the cluster's own when the provider serves it,
else the provider's first region. Every provider considered gets a line saying why it was or was not chosen.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chalicelib.errors import ConflictError, ValidationError
from chalicelib.models.control_plane import Provider, ProviderRequest, ScheduleCandidate, ScheduleDecision, ScheduleRequest
from chalicelib.repositories import ClusterRepository
from chalicelib.repositories.provider_catalog import ProviderCatalogRepository


@dataclass(frozen=True)
class Choice:
    provider: str | None
    region: str | None
    price_per_hour: Decimal | None
    reasons: list[str]
    candidates: list[dict[str, Any]]


def _region_for(provider: dict[str, Any], cluster_region: str) -> tuple[str, str]:
    if cluster_region in provider["regions"]:
        return cluster_region, f"region {cluster_region}: the cluster's own region"
    region = provider["regions"][0]
    return region, f"region {region}: {provider['name']} does not serve the cluster's region {cluster_region}"


def choose(providers: list[dict[str, Any]], cluster_region: str, preferred: str | None = None,
           avoid: str | None = None) -> Choice:
    """The placement decision for a cluster in `cluster_region` (provider None when nothing is eligible)."""
    ordered = sorted(providers, key=lambda p: (Decimal(p["price_per_hour"]), p["name"]))
    candidates, eligible = [], []
    for p in ordered:
        free = p["capacity"] - p["used"]
        region = _region_for(p, cluster_region)[0] if p["regions"] else None
        if p["name"] == avoid:
            reason, ok = "avoided by the request", False
        elif free <= 0:
            reason, ok = f"no capacity ({p['used']} of {p['capacity']} used)", False
        elif not p["regions"]:
            reason, ok = "serves no region", False
        else:
            reason, ok = f"eligible: {free} of {p['capacity']} free at {p['price_per_hour']}/h", True
            eligible.append(p)
        candidates.append({"provider": p["name"], "eligible": ok, "price_per_hour": Decimal(p["price_per_hour"]),
                           "region": region, "reason": reason})

    reasons: list[str] = []
    chosen = None
    if preferred is not None:
        match = next((p for p in eligible if p["name"] == preferred), None)
        if match is not None:
            chosen = match
            reasons.append(f"{preferred}: preferred by the request and eligible")
        else:
            why = next(c["reason"] for c in candidates if c["provider"] == preferred)
            reasons.append(f"preferred provider {preferred} skipped: {why}")
    if chosen is None and eligible:
        chosen = eligible[0]
        reasons.append(f"{chosen['name']}: lowest price among eligible providers ({chosen['price_per_hour']}/h)")
    if chosen is None:
        reasons.append("no provider is eligible")
        return Choice(None, None, None, reasons, candidates)
    region, region_reason = _region_for(chosen, cluster_region)
    reasons.append(region_reason)
    for c in candidates:
        if c["provider"] == chosen["name"]:
            c["reason"] = "chosen; " + c["reason"]
    return Choice(chosen["name"], region, Decimal(chosen["price_per_hour"]), reasons, candidates)


class SchedulingService:
    def __init__(self, catalog: ProviderCatalogRepository | None = None,
                 clusters: ClusterRepository | None = None) -> None:
        self.catalog = catalog or ProviderCatalogRepository()
        self.clusters = clusters or ClusterRepository()

    def list_providers(self) -> list[Provider]:
        return [Provider.model_validate(p) for p in self.catalog.list()]

    def put_provider(self, request: ProviderRequest) -> Provider:
        """Create or replace a catalogue entry."""
        return Provider.model_validate(self.catalog.upsert(**request.model_dump()))

    def delete_provider(self, name: str) -> None:
        """Remove a catalogue entry (404 missing; 409 while droplets run on it)."""
        self.catalog.delete(name)

    def schedule(self, request: ScheduleRequest) -> ScheduleDecision:
        """Pick a provider and region for the cluster (NotFoundError: no cluster; ValidationError: a named
        provider is not in the catalogue; ConflictError: no provider is eligible)."""
        if request.preferred_provider is not None and request.preferred_provider == request.avoid_provider:
            raise ValidationError("preferred_provider: must differ from avoid_provider")
        cluster = self.clusters.get(request.cluster_id)
        providers = self.catalog.list()
        names = {p["name"] for p in providers}
        for field in ("preferred_provider", "avoid_provider"):
            value = getattr(request, field)
            if value is not None and value not in names:
                raise ValidationError(f"{field}: unknown provider {value!r}")
        choice = choose(providers, cluster["region"], request.preferred_provider, request.avoid_provider)
        if choice.provider is None:
            raise ConflictError("no provider is eligible: " + "; ".join(
                f"{c['provider']}: {c['reason']}" for c in choice.candidates))
        return ScheduleDecision(
            provider=choice.provider, region=choice.region, cluster_id=cluster["id"],
            price_per_hour=choice.price_per_hour, reasons=choice.reasons,
            candidates=[ScheduleCandidate.model_validate(c) for c in choice.candidates],
        )
