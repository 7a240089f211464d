"""The `simulated` DropletProvider: no machines, but real-looking private addresses and instance ids.

Everything is derived from the droplet id, so repeating an operation (a retried job) gives the same
answer, and two droplets get distinct addresses in 10.0.0.0/8 (collisions are 1 in 16 million).
"""
from __future__ import annotations

import hashlib
from typing import Any

from chalicelib.providers import LaunchedInstance


def _digest(droplet_id: str, salt: str = "") -> bytes:
    return hashlib.sha256(f"{salt}{droplet_id}".encode()).digest()


class SimulatedProvider:
    """The simulated driver: of `simulated` itself, and of every catalogue provider without a real driver
    (`digitalocean`, providers added with POST /providers), whose instance ids then read `sim-<name>-...`."""

    name = "simulated"

    def __init__(self, name: str = "simulated") -> None:
        self.name = name

    def launch(self, droplet: dict[str, Any]) -> LaunchedInstance:
        d = _digest(droplet["id"])
        # 10.x.y.z with z in 2..254: never the network, the gateway (.1) or the broadcast address.
        ip = f"10.{d[0]}.{d[1]}.{2 + d[2] % 253}"
        prefix = "sim-" if self.name == "simulated" else f"sim-{self.name}-"
        return LaunchedInstance(instance_id=f"{prefix}{d[3:11].hex()}", ip_address=ip)

    def terminate(self, droplet: dict[str, Any]) -> None:
        return None

    def utilisation(self, droplet: dict[str, Any]) -> dict[str, float]:
        d = _digest(droplet["id"], salt="load")
        return {"cpu": 5 + d[0] % 60, "memory": 20 + d[1] % 50, "disk": 10 + d[2] % 50, "network": float(d[3] % 100)}
