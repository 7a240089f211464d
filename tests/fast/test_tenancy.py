"""Issue 13: tenants never see or touch each other's resources. Another tenant's resource is 404 (never
403), lists leave it out, and the functions that work across tenants (event handler, autoscaler) keep each
tenant's work in that tenant."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from chalicelib import db
from chalicelib.repositories import MetricRepository
from conftest import new_api_key
from control_plane_support import add_droplet, catalog  # noqa: F401 - catalog is a fixture
from msk_events import batch_of, envelope

POLICY = {"name": "cpu-high", "type": "metrics", "min_replicas": 1, "max_replicas": 3, "metric_type": "cpu",
          "metric_trigger": 0.8}


@pytest.fixture
def tenants(client, job_queue, catalog):  # noqa: ANN001
    """Two tenants' operators (acme, globex) and what acme owns: a cluster with a droplet, a job, a metric,
    a policy and a deployment."""
    acme, globex = client.as_key(new_api_key("operator", "acme")), client.as_key(new_api_key("operator", "globex"))
    cluster = acme.post("/api/v1/clusters", {"name": "web", "region": "nyc3"}).json["cluster"]
    droplet = acme.post("/api/v1/droplets", {"name": "d1", "region": "nyc3", "size": "s-1vcpu-1gb",
                                              "cluster_id": cluster["id"]}).json["droplet"]
    job = acme.post("/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cluster["id"]}}).json["job"]
    MetricRepository().record(cluster_id=cluster["id"], metric_type="cpu", value=50.0, unit="%",
                              timestamp=dt.datetime.now(dt.timezone.utc))
    policy = acme.post("/api/v1/autoscaling/policies", {**POLICY, "cluster_id": cluster["id"]}).json
    deployment = acme.post("/api/v1/deployments/start", {"cluster_id": cluster["id"], "version": "v2",
                                                         "strategy": "rolling", "target_percent": 100})
    assert deployment.status_code == 201, deployment.json
    return {"acme": acme, "globex": globex, "cluster": cluster, "droplet": droplet, "job": job, "policy": policy,
            "deployment": deployment.json}


def test_every_resource_of_another_tenant_is_404_and_left_out_of_lists(tenants):
    acme, globex, cid = tenants["acme"], tenants["globex"], tenants["cluster"]["id"]
    did, jid, pid = tenants["droplet"]["id"], tenants["job"]["id"], tenants["policy"]["id"]
    dep = tenants["deployment"]["id"]
    reads = [f"/api/v1/clusters/{cid}", f"/api/v1/health/{cid}", f"/api/v1/droplets/{did}", f"/api/v1/jobs/{jid}",
             f"/api/v1/jobs/{jid}/logs", f"/api/v1/jobs/{jid}/event-state", f"/api/v1/billing/cluster?cluster_id={cid}",
             f"/api/v1/autoscaling/policies/{pid}", f"/api/v1/deployments/{dep}"]
    for path in reads[:5] + reads[6:]:
        assert acme.get(path).status_code == 200, path  # the owner reads them
    for path in reads:
        response = globex.get(path)
        assert response.status_code == 404, (path, response.json)
    assert globex.get("/api/v1/clusters").json["clusters"] == []
    assert globex.get("/api/v1/droplets").json["droplets"] == []
    assert globex.get(f"/api/v1/droplets?cluster_id={cid}").json["droplets"] == []
    assert globex.get("/api/v1/jobs").json["total"] == 0
    assert globex.get(f"/api/v1/metrics?cluster_id={cid}").json["metrics"] == []
    assert globex.get("/api/v1/metrics").json["metrics"] == []
    assert globex.get(f"/api/v1/autoscaling/policies?cluster_id={cid}").status_code in (200, 404)
    assert globex.get(f"/api/v1/autoscaling/policies?cluster_id={cid}").json.get("policies", []) == []
    assert globex.get(f"/api/v1/deployments?cluster_id={cid}").json.get("deployments", []) == []
    assert [c["id"] for c in acme.get("/api/v1/clusters").json["clusters"]] == [cid]


def test_no_write_reaches_another_tenants_resource(tenants, snapshot):
    acme, globex, cid = tenants["acme"], tenants["globex"], tenants["cluster"]["id"]
    before = snapshot()
    writes = [
        ("PUT", f"/api/v1/clusters/{cid}", {"name": "stolen"}),
        ("DELETE", f"/api/v1/clusters/{cid}", None),
        ("DELETE", f"/api/v1/droplets/{tenants['droplet']['id']}", None),
        ("POST", "/api/v1/droplets", {"name": "x", "region": "nyc3", "size": "s-1vcpu-1gb", "cluster_id": cid}),
        ("POST", "/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cid}}),
        ("POST", "/api/v1/autoscaling/policies", {**POLICY, "cluster_id": cid}),
        ("PUT", f"/api/v1/autoscaling/policies/{tenants['policy']['id']}", {**POLICY, "cluster_id": cid}),
        ("DELETE", f"/api/v1/autoscaling/policies/{tenants['policy']['id']}", None),
        ("POST", f"/api/v1/autoscaling/evaluate?cluster_id={cid}", None),
        ("POST", "/api/v1/deployments/start", {"cluster_id": cid, "version": "v3", "strategy": "rolling",
                                              "target_percent": 100}),
        ("POST", f"/api/v1/deployments/{tenants['deployment']['id']}/rollback", None),
        ("POST", "/api/v1/diagnosis/diagnose", {"cluster_id": cid}),
        ("POST", "/api/v1/schedule", {"cluster_id": cid}),
        ("POST", "/api/v1/migrations", {"droplet_id": tenants["droplet"]["id"], "target_provider": "aws"}),
    ]
    for method, path, body in writes:
        response = globex.request(method, path, body)
        assert response.status_code == 404, (method, path, response.json)
    assert snapshot() == before
    assert acme.get(f"/api/v1/clusters/{cid}").json["cluster"]["name"] == "web"


def test_what_a_tenant_creates_belongs_to_it(tenants):
    rows = db.query("SELECT 'cluster' AS t, tenant_id FROM clusters UNION ALL SELECT 'droplet', tenant_id FROM droplets "
                    "UNION ALL SELECT 'job', tenant_id FROM jobs")
    assert {(r["t"], r["tenant_id"]) for r in rows} == {("cluster", "acme"), ("droplet", "acme"), ("job", "acme")}


def test_the_event_handler_applies_an_event_only_within_its_tenant(tenants, dead_letters_sink, handle, snapshot):
    cid = tenants["cluster"]["id"]
    stranger = {"id": f"droplet-{uuid.uuid4()}", "name": "intruder", "status": "active"}
    before = snapshot()
    handle(batch_of([envelope("droplet_created", cid, tenant_id="globex", payload={"droplet": stranger}),
                     envelope("telemetry", cid, tenant_id="globex", payload={"cpu": 99, "memory": 99}),
                     envelope("metric_threshold_exceeded", cid, tenant_id="globex", payload={"metric": "cpu", "value": 99})]))
    assert snapshot() == before  # no droplet, no metric, no scale job, no health change
    # The same events in the cluster's own tenant (or naming none, as v1 producers do) are applied.
    handle(batch_of([envelope("droplet_created", cid, tenant_id="acme", payload={"droplet": stranger}),
                     envelope("telemetry", cid, payload={"cpu": 99, "memory": 99})], start=10))
    assert db.query("SELECT tenant_id FROM droplets WHERE id = %s", (stranger["id"],)) == [{"tenant_id": "acme"}]
    assert len(db.query("SELECT id FROM metrics WHERE cluster_id = %s", (cid,))) == before["metrics"][0] + 2


def test_the_autoscaler_works_across_tenants_and_each_job_stays_in_its_clusters_tenant(client, job_queue, catalog):
    from chalicelib.functions.autoscaler import run

    cluster_of = {}
    for tenant in ("acme", "globex"):
        operator = client.as_key(new_api_key("operator", tenant))
        cid = operator.post("/api/v1/clusters", {"name": f"hot-{tenant}", "region": "nyc3"}).json["cluster"]["id"]
        for _ in range(2):
            add_droplet(cid)
        MetricRepository().record(cluster_id=cid, metric_type="cpu", value=95.0, unit="%",
                                  timestamp=dt.datetime.now(dt.timezone.utc))
        assert operator.post("/api/v1/autoscaling/policies", {**POLICY, "cluster_id": cid}).status_code == 201
        cluster_of[tenant] = cid
    result = run()
    assert len(result["jobs"]) == 2, result
    jobs = db.query("SELECT cluster_id, tenant_id FROM jobs WHERE type = 'scale'")
    assert {(j["cluster_id"], j["tenant_id"]) for j in jobs} == {(cluster_of[t], t) for t in cluster_of}
    for message in job_queue.messages:
        assert json.loads(message["MessageBody"])["job_id"]


@pytest.fixture
def dead_letters_sink():
    from chalicelib.event_pipeline.dead_letters import InMemoryDeadLetters, set_dead_letters

    sink = InMemoryDeadLetters()
    set_dead_letters(sink)
    yield sink
    set_dead_letters(None)


@pytest.fixture
def handle(job_queue):  # noqa: ANN001
    from chalicelib.event_pipeline import batch as batch_module
    from chalicelib.functions.event_handler import handle_kafka_batch
    from chalicelib.redis_client import get_redis

    batch_module.reset_batch_processor()
    redis = get_redis()
    keys = list(redis.scan_iter("events:*", count=1000))
    if keys:
        redis.delete(*keys)
    return lambda event: handle_kafka_batch(event, Context())


class Context:
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def test_quotas_are_the_owners_read_by_its_members_and_changed_by_platform_admins_only(client, tenants):  # noqa: ANN001
    """Issue 18 with 13: a tenant's quota counts its own clusters only; another tenant's quotas (and clusters)
    are not readable; a tenant's admin cannot lift its own limits."""
    acme, globex, cid = tenants["acme"], tenants["globex"], tenants["cluster"]["id"]
    mine = acme.get("/api/v1/quotas")
    assert mine.status_code == 200 and mine.json["scope"] == "tenant:acme", mine.json
    assert mine.json["usage"]["droplets"] == 1 and mine.json["usage"]["deployments"] == 1, mine.json
    theirs = globex.get("/api/v1/quotas")
    assert theirs.json["scope"] == "tenant:globex" and theirs.json["usage"]["droplets"] == 0, theirs.json
    assert globex.get("/api/v1/quotas?tenant_id=acme").status_code == 403
    assert globex.get(f"/api/v1/quotas?cluster_id={cid}").status_code == 404  # ids do not leak
    acme_admin = client.as_key(new_api_key("admin", "acme"))
    assert acme_admin.put("/api/v1/quotas", {"limits": {"droplets": 100000}}).status_code == 403
    # The platform admin (tenant `default`) sets acme's limit; acme's next droplet is refused by it.
    assert client.put("/api/v1/quotas", {"tenant_id": "acme", "limits": {"droplets": 1}}).status_code == 200
    refused = acme.post("/api/v1/droplets", {"name": "d2", "region": "nyc3", "size": "s-1vcpu-1gb", "cluster_id": cid})
    assert refused.status_code == 409 and "droplets" in refused.json["error"], refused.json
    assert globex.post("/api/v1/clusters", {"name": "api", "region": "nyc3"}).status_code == 201  # not globex's limit
