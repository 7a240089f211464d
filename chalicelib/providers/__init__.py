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


def get_provider(name: str) -> DropletProvider:
    """The provider called `name` (created once per container); ProviderError when unknown."""
    if name not in _providers:
        if name == "simulated":
            from chalicelib.providers.simulated import SimulatedProvider

            _providers[name] = SimulatedProvider()
        elif name == "aws":
            from chalicelib.providers.aws import AwsProvider

            _providers[name] = AwsProvider()
        else:
            raise ProviderError(f"unknown provider {name!r}")
    return _providers[name]


def set_provider(name: str, provider: DropletProvider | None) -> None:
    """Install `provider` under `name` (tests); None restores the default on next use."""
    if provider is None:
        _providers.pop(name, None)
    else:
        _providers[name] = provider
