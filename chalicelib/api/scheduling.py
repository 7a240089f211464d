"""/api/v1/providers (the scheduling catalogue), /api/v1/schedule and /api/v1/migrations."""
from __future__ import annotations

from chalicelib.api.openapi import Operation, document
from chalicelib.api.responses import created, ok
from chalicelib.api.routing import current_request
from chalicelib.http import caller_id, parse_body
from chalicelib.models import MessageResponse
from chalicelib.models.control_plane import (
    MigrationAccepted, MigrationRequest, Provider, ProviderList, ProviderRequest, ScheduleOut, ScheduleRequest,
)
from chalicelib.services.scheduling import SchedulingService

service = SchedulingService()

document(
    Operation("GET", "/api/v1/providers", "List the scheduling catalogue", "scheduling", ProviderList),
    Operation("POST", "/api/v1/providers", "Create or replace a catalogue provider", "scheduling", Provider, 201,
              body=ProviderRequest),
    Operation("DELETE", "/api/v1/providers/{name}", "Delete a catalogue provider (admin)", "scheduling",
              MessageResponse, notes="404: no such provider; 409: droplets still run on it."),
    Operation("POST", "/api/v1/schedule", "Choose a provider and region for a cluster, with the reasons",
              "scheduling", ScheduleOut, body=ScheduleRequest,
              notes="409 when no provider is eligible (all avoided or without capacity)."),
    Operation("POST", "/api/v1/migrations", "Move a droplet to another provider (as a job)", "scheduling",
              MigrationAccepted, body=MigrationRequest,
              notes="404: droplet or provider missing; 409: droplet not active, already there, or no capacity."),
)


def list_providers():
    return ok(ProviderList(items=service.list_providers()))


def put_provider():
    return created(service.put_provider(parse_body(current_request(), ProviderRequest)))


# Platform admins only, like POST /providers (chalicelib/api/access.py).
def delete_provider(name: str):
    service.delete_provider(name)
    return ok(MessageResponse(message=f"Provider {name} deleted"))


def schedule():
    decision = service.schedule(parse_body(current_request(), ScheduleRequest))
    chosen = next(p for p in service.list_providers() if p.name == decision.provider)
    return ok(ScheduleOut.model_validate({**decision.model_dump(), "provider": chosen}))


def migrate_droplet():
    from chalicelib.services.droplet_migration import DropletMigrationService

    request = current_request()
    return ok(DropletMigrationService().start(parse_body(request, MigrationRequest), caller=caller_id(request)))
