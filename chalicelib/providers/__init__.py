"""DropletProviders: where a droplet actually runs. The provider is chosen per droplet (its `provider` field).

Only the job worker drives providers; the API records droplets and leaves the machines to the worker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class ProviderError(RuntimeError):
    """The provider refused or failed an operation; the job that asked fails with this reason."""


@dataclass(frozen=True)
class LaunchedInstance:
    instance_id: str
    ip_address: str


class DropletProvider(Protocol):
    name: str

    def launch(self, droplet: dict[str, Any]) -> LaunchedInstance:
        """Start a machine for the droplet row (id, region, size, image); ProviderError on failure."""

    def terminate(self, droplet: dict[str, Any]) -> None:
        """Stop the droplet's machine (idempotent: an already-gone machine is fine)."""

    def utilisation(self, droplet: dict[str, Any]) -> dict[str, float]:
        """The machine's current cpu/memory/disk (%) and network (Mbps)."""


_providers: dict[str, DropletProvider] = {}


# Providers with a real driver. Every other provider in the catalogue (`digitalocean`, and any added with
# POST /providers) is driven by the simulated driver under its own name: no machines are started for it
# here, and the droplets it runs say so (instance ids `sim-<provider>-...`). See README, "What is real".
REAL_DRIVERS = ("simulated", "aws")


def get_provider(name: str) -> DropletProvider:
    """The driver of provider `name` (created once per container); ProviderError when the provider is neither
    one with a real driver nor in the catalogue."""
    if name not in _providers:
        if name == "simulated":
            from chalicelib.providers.simulated import SimulatedProvider

            _providers[name] = SimulatedProvider()
        elif name == "aws":
            from chalicelib.providers.aws import AwsProvider

            _providers[name] = AwsProvider()
        elif has_driver(name):
            from chalicelib.providers.simulated import SimulatedProvider

            _providers[name] = SimulatedProvider(name)
        else:
            raise ProviderError(f"unknown provider {name!r}")
    return _providers[name]


def has_driver(name: str) -> bool:
    """True when droplets can run on provider `name`: a real driver, or a catalogue entry (simulated)."""
    if name in REAL_DRIVERS:
        return True
    from chalicelib.errors import NotFoundError
    from chalicelib.repositories.provider_catalog import ProviderCatalogRepository

    try:
        ProviderCatalogRepository().get(name)
    except NotFoundError:
        return False
    return True


def set_provider(name: str, provider: DropletProvider | None) -> None:
    """Install `provider` under `name` (tests); None restores the default on next use."""
    if provider is None:
        _providers.pop(name, None)
    else:
        _providers[name] = provider
