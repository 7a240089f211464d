"""The job worker, through the real app's `job_worker` function (chalice.test.Client's Lambda invoke),
against the real MariaDB, Redis (idempotency records) and the Kafka broker (events read back)."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from provider_doubles import FailingLaunches
from topic_reader import topic_reader

from chalicelib import db
from chalicelib.providers import ProviderError, set_provider
from chalicelib.settings import get_settings


@pytest.fixture
def worker(app):  # noqa: ANN001
    """`deliver([bodies])` -> the batch response; each body is one SQS message to the job_worker."""
    from chalice.test import Client

    with Client(app) as test_client:
        def deliver(bodies: list[str]) -> dict[str, Any]:
            event = test_client.events.generate_sqs_event(message_bodies=bodies,
                                                          queue_name=get_settings().jobs_queue_name)
            for record in event["Records"]:  # SQS gives every delivery its own id; the generator does not
                record["messageId"] = str(uuid.uuid4())
            return test_client.lambda_.invoke("job_worker", event).payload

        yield deliver


@pytest.fixture
def events(kafka_broker):  # noqa: ANN001
    """`read(job_id, until_type)`: the events of a job on cluster-events produced during this test, in order."""
    from chalicelib.outbox import get_outbox_relay

    with topic_reader(get_settings().events_topic, lambda event: event.get("job_id")) as read:
        def relayed_then_read(*args, **kwargs):  # noqa: ANN002, ANN003
            # What the scheduled relay would do: publish what is left in the outbox (the API never does).
            get_outbox_relay().drain(ignore_backoff=True)
            return read(*args, **kwargs)

        yield relayed_then_read


@pytest.fixture
def submit(client, job_queue):  # noqa: ANN001
    """`submit(type, **parameters)` -> (job, SQS message body) through POST /api/v1/jobs."""
    def submit_job(job_type: str, **parameters: str) -> tuple[dict[str, Any], str]:
        response = client.post("/api/v1/jobs", {"type": job_type, "parameters": parameters})
        assert response.status_code == 201, response.body
        job = response.json["job"]
        [body] = [m["MessageBody"] for m in job_queue.messages if json.loads(m["MessageBody"])["job_id"] == job["id"]]
        return job, body

    return submit_job


def job_row(client, job_id: str) -> dict[str, Any]:  # noqa: ANN001
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200
    job = response.json["job"]
    # On the wire `result` is JSON text (the original's `result` was text); these tests read into it.
    return {**job, "result": json.loads(job["result"])} if "result" in job else job


def droplets_of(cluster_id: str) -> list[dict[str, Any]]:
    return db.query("SELECT * FROM droplets WHERE cluster_id = %s ORDER BY created_at, id", (cluster_id,))


@pytest.fixture
def provider_failure():
    def install(error: Exception) -> None:
        set_provider("simulated", FailingLaunches(error))

    yield install
    set_provider("simulated", None)


def test_provision_job_completes_with_one_active_droplet_and_its_events_in_order(client, make_cluster, submit,
                                                                                 worker, events):
    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    assert worker([body]) == {"batchItemFailures": []}

    done = job_row(client, job["id"])
    assert done["status"] == "completed" and done["progress"] == 100 and done["completed_at"]
    [droplet] = droplets_of(cluster["id"])
    assert droplet["status"] == "active" and droplet["region"] == "nyc3" and droplet["size"] == "s-1vcpu-1gb"
    assert droplet["ip_address"].startswith("10.") and droplet["provider_instance_id"].startswith("sim-")
    assert done["result"]["droplet_id"] == droplet["id"]

    seen = events(job["id"], "job_completed")
    types = [e["type"] for e in seen]
    assert types[0] == "job_requested" and types[1] == "job_started" and types[-1] == "job_completed"
    assert "droplet_created" in types and "job_progress" in types
    progress = [e["progress"] for e in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    for event in seen:
        assert set(event) == {"id", "type", "job_id", "job_type", "cluster_id", "tenant_id", "progress", "message",
                              "timestamp", "trace_id", "correlation_id", "payload"}  # `id`: the outbox event id (dedup key)
        assert event["tenant_id"] == "default"
        assert event["trace_id"] == job["trace_id"] and event["cluster_id"] == cluster["id"]
        assert event["job_type"] == "provision" and event["correlation_id"]
    assert len({e["id"] for e in seen}) == len(seen)
    created = next(e for e in seen if e["type"] == "droplet_created")
    assert created["payload"]["droplet"]["id"] == droplet["id"]


def test_a_provision_job_commits_twice_with_its_events_in_the_order_of_its_changes(client, make_cluster, submit,
                                                                                  worker, events, monkeypatch,
                                                                                  caplog):
    """Issue 16: the start joins the droplet's record and the first checkpoint (one commit and one write of the job's
    row, before the provider is called), and the completion joins the droplet's activation and the last progress
    report (one commit, one write); every event is still there, in order."""
    import pymysql

    from chalicelib.functions import job_worker
    from chalicelib.providers import get_provider

    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    commits, status_at_launch = [], []
    running = {"now": False}  # inside the worker's run of the job (not the batch's read, not the relay after it)
    real_commit, real_run = pymysql.connections.Connection.commit, job_worker._run

    def counted_commit(conn):  # noqa: ANN001
        if running["now"]:
            commits.append(1)
        return real_commit(conn)

    def run(*args, **kwargs):  # noqa: ANN002, ANN003
        running["now"] = True
        try:
            return real_run(*args, **kwargs)
        finally:
            running["now"] = False

    def launch(droplet):  # noqa: ANN001
        with db.connect() as observer, observer.cursor() as cur:  # another connection: only what is committed
            cur.execute("SELECT status FROM jobs WHERE id = %s", (job["id"],))
            status_at_launch.append((cur.fetchone()["status"], len(commits)))
        return real_launch(droplet)

    job_writes = []
    real_query = pymysql.connections.Connection.query

    def traced_query(conn, sql, unbuffered=False):  # noqa: ANN001
        if running["now"] and sql.startswith("UPDATE jobs"):
            job_writes.append(sql)
        return real_query(conn, sql, unbuffered)

    provider = get_provider("simulated")
    real_launch = provider.launch
    monkeypatch.setattr(pymysql.connections.Connection, "query", traced_query)
    monkeypatch.setattr(pymysql.connections.Connection, "commit", counted_commit)
    monkeypatch.setattr(job_worker, "_run", run)
    monkeypatch.setattr(provider, "launch", launch)
    assert worker([body]) == {"batchItemFailures": []}
    assert len(commits) == 2 and len(job_writes) == 2  # the job's row: started at 30%, then completed
    transitions = [(r.__dict__["from"], r.to, r.progress) for r in caplog.records if r.getMessage() == "job transition"]
    assert transitions == [("queued", "processing", 30), ("processing", "completed", 100)]  # one line per write
    assert status_at_launch == [("processing", 1)]  # started, and committed, before the provider was called
    assert job_row(client, job["id"])["status"] == "completed"
    seen = events(job["id"], "job_completed")
    assert [(e["type"], e["progress"]) for e in seen] == [
        ("job_requested", 0), ("job_started", 5), ("job_progress", 30), ("droplet_created", 30),
        ("job_progress", 90), ("job_completed", 100)]


def test_provision_honours_region_and_size_parameters(client, make_cluster, submit, worker):
    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"], region="ams3", size="s-2vcpu-4gb", name="db-1")
    worker([body])
    [droplet] = droplets_of(cluster["id"])
    assert (droplet["region"], droplet["size"], droplet["name"]) == ("ams3", "s-2vcpu-4gb", "db-1")


def test_duplicate_delivery_runs_the_job_once(client, make_cluster, submit, worker):
    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    assert worker([body, body]) == {"batchItemFailures": []}  # both copies in one batch
    assert worker([body]) == {"batchItemFailures": []}  # and a redelivery later
    assert len(droplets_of(cluster["id"])) == 1
    assert job_row(client, job["id"])["status"] == "completed"


def test_a_finished_job_is_acknowledged_without_work(client, make_cluster, submit, worker):
    from chalicelib.redis_client import get_redis

    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    worker([body])
    before = job_row(client, job["id"])
    get_redis().flushdb()  # even without its idempotency record, the final status stops a rerun
    assert worker([body]) == {"batchItemFailures": []}
    assert job_row(client, job["id"]) == before and len(droplets_of(cluster["id"])) == 1


def test_records_not_started_before_the_time_reserve_are_reported_failed_without_work(client, make_cluster, submit,
                                                                                     worker, monkeypatch):
    from chalicelib import jobs_queue
    from chalicelib.functions import job_worker

    released = []
    monkeypatch.setattr(jobs_queue, "release_for_redelivery", lambda arn, handles: released.append((arn, handles)))
    cluster = make_cluster()
    first, body_1 = submit("provision", cluster_id=cluster["id"])
    second, body_2 = submit("provision", cluster_id=cluster["id"])
    # Every second of the invocation's time is reserved: no record may start.
    monkeypatch.setattr(job_worker, "START_RESERVE_FRACTION", 1.0)
    response = worker([body_1, body_2])
    assert len(response["batchItemFailures"]) == 2  # both delivered again by SQS
    [(arn, handles)] = released  # at once, not after the visibility timeout
    assert arn.endswith(":" + get_settings().jobs_queue_name) and len(handles) == 2
    assert [job_row(client, j["id"])["status"] for j in (first, second)] == ["queued", "queued"]
    assert droplets_of(cluster["id"]) == []
    monkeypatch.setattr(job_worker, "START_RESERVE_FRACTION", 0.3)
    assert worker([body_1, body_2]) == {"batchItemFailures": []}  # the redelivery runs them, once each
    assert [job_row(client, j["id"])["status"] for j in (first, second)] == ["completed", "completed"]
    assert len(droplets_of(cluster["id"])) == 2


def test_a_job_finished_since_the_batch_was_read_is_read_again_and_not_run_twice(client, make_cluster, submit,
                                                                                worker, monkeypatch):
    from chalicelib.functions import job_worker
    from chalicelib.redis_client import get_redis
    from chalicelib.services.jobs import JobService

    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    as_queued = JobService().get(job["id"])  # the row as a batch read before another delivery finished it
    assert worker([body]) == {"batchItemFailures": []}
    finished = job_row(client, job["id"])
    get_redis().flushdb()  # no idempotency record either: only the row can stop a second run
    monkeypatch.setattr(job_worker, "read_batch_jobs", lambda event: {as_queued.id: as_queued})
    assert worker([body]) == {"batchItemFailures": []}
    assert job_row(client, job["id"]) == finished and len(droplets_of(cluster["id"])) == 1


def test_a_batch_reads_its_jobs_in_one_statement(make_cluster, submit, worker, monkeypatch):
    from chalicelib.repositories.jobs import JobRepository

    cluster = make_cluster()
    bodies = [submit("diagnose", cluster_id=cluster["id"])[1] for _ in range(3)]
    single_reads = []
    real_get = JobRepository.get
    monkeypatch.setattr(JobRepository, "get", lambda self, job_id, **kw: single_reads.append(job_id) or real_get(
        self, job_id, **kw))
    assert worker([*bodies, bodies[0]]) == {"batchItemFailures": []}  # a duplicate in the batch too
    assert single_reads == []  # every job came from the batch's read; the duplicate met its idempotency record


def test_a_message_for_a_missing_job_is_acknowledged(worker):
    body = json.dumps({"job_id": "job-does-not-exist", "trace_id": "t"})
    assert worker([body]) == {"batchItemFailures": []}


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"trace_id": "t"}), json.dumps({"job_id": 7})])
def test_a_malformed_message_is_reported_failed_and_the_rest_of_the_batch_completes(client, make_cluster, submit,
                                                                                 worker, body):
    cluster = make_cluster()
    job, good = submit("diagnose", cluster_id=cluster["id"])
    response = worker([body, good])
    assert len(response["batchItemFailures"]) == 1
    assert job_row(client, job["id"])["status"] == "completed"


def test_a_provider_refusal_fails_the_job_with_the_reason(client, make_cluster, submit, worker, events,
                                                          provider_failure):
    cluster = make_cluster()
    provider_failure(ProviderError("no capacity in nyc3"))
    job, body = submit("provision", cluster_id=cluster["id"])
    assert worker([body]) == {"batchItemFailures": []}  # acknowledged: retrying cannot help
    failed = job_row(client, job["id"])
    assert failed["status"] == "failed" and "no capacity in nyc3" in failed["error"] and failed["completed_at"]
    [droplet] = droplets_of(cluster["id"])
    assert droplet["status"] == "error"
    seen = events(job["id"], "job_failed")
    assert "no capacity in nyc3" in seen[-1]["payload"]["error"]


def test_an_outage_mid_job_is_retried_and_the_retry_resumes_with_the_same_droplet(client, make_cluster, submit,
                                                                                 worker, provider_failure):
    cluster = make_cluster()
    provider_failure(ConnectionError("provider API unreachable"))
    job, body = submit("provision", cluster_id=cluster["id"])
    assert len(worker([body])["batchItemFailures"]) == 1  # left for SQS to redeliver
    assert job_row(client, job["id"])["status"] == "running"  # `processing`, in the original's word
    set_provider("simulated", None)
    assert worker([body]) == {"batchItemFailures": []}
    assert job_row(client, job["id"])["status"] == "completed"
    [droplet] = droplets_of(cluster["id"])
    assert droplet["status"] == "active"


def test_bad_parameters_fail_the_job(client, make_cluster, submit, worker):
    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"], region="mars1")
    worker([body])
    failed = job_row(client, job["id"])
    assert failed["status"] == "failed" and "region" in failed["error"]
    assert droplets_of(cluster["id"]) == []


def test_scale_up_to_replicas_then_down_by_delta_touches_only_that_cluster(client, make_cluster, submit, worker):
    cluster, other = make_cluster("web"), make_cluster("other")
    _, body = submit("provision", cluster_id=other["id"])
    worker([body])
    job, body = submit("scale", cluster_id=cluster["id"], replicas="3")
    worker([body])
    done = job_row(client, job["id"])
    assert done["status"] == "completed" and len(done["result"]["added"]) == 3
    assert [d["status"] for d in droplets_of(cluster["id"])] == ["active"] * 3

    newest = droplets_of(cluster["id"])[-1]["id"]
    job, body = submit("scale", cluster_id=cluster["id"], delta="-1")
    worker([body])
    done = job_row(client, job["id"])
    assert done["status"] == "completed" and done["result"]["removed"] == [newest]
    assert len(droplets_of(cluster["id"])) == 2 and len(droplets_of(other["id"])) == 1


def test_a_scale_interrupted_after_recording_a_droplet_launches_it_on_retry_and_adds_none_twice(
        client, make_cluster, submit, worker):
    cluster = make_cluster()
    set_provider("simulated", FailingLaunches(ConnectionError("provider API unreachable"), nth=2))  # an outage
    try:
        job, body = submit("scale", cluster_id=cluster["id"], replicas="3")
        assert len(worker([body])["batchItemFailures"]) == 1  # left for SQS to redeliver
        assert [d["status"] for d in droplets_of(cluster["id"])] == ["active", "provisioning"]
        assert worker([body]) == {"batchItemFailures": []}
    finally:
        set_provider("simulated", None)
    done = job_row(client, job["id"])
    droplets = droplets_of(cluster["id"])
    assert done["status"] == "completed"
    assert [d["status"] for d in droplets] == ["active"] * 3  # the recorded one launched, not skipped
    assert sorted(done["result"]["added"]) == sorted(d["id"] for d in droplets)


def test_scale_outside_the_bounds_fails_the_job(client, make_cluster, submit, worker):
    cluster = make_cluster()
    job, body = submit("scale", cluster_id=cluster["id"], replicas="4", max_replicas="3")
    worker([body])
    failed = job_row(client, job["id"])
    assert failed["status"] == "failed" and "outside the bounds 1..3" in failed["error"]
    job, body = submit("scale", cluster_id=cluster["id"], delta="-1")  # 0 droplets - 1
    worker([body])
    assert job_row(client, job["id"])["status"] == "failed"


def test_diagnose_stores_the_report_as_the_result(client, make_cluster, submit, worker):
    cluster = make_cluster()
    job, body = submit("diagnose", cluster_id=cluster["id"])
    worker([body])
    done = job_row(client, job["id"])
    assert done["status"] == "completed"
    assert done["result"]["cluster"]["id"] == cluster["id"]
    assert "Create initial droplet to get the cluster running" in done["result"]["recommendations"]


def test_monitor_records_a_metrics_snapshot_of_the_active_droplets(client, make_cluster, submit, worker):
    cluster = make_cluster()
    job, body = submit("monitor", cluster_id=cluster["id"])
    worker([body])
    assert job_row(client, job["id"])["result"] == {"droplets": 0, "metrics": {}}  # nothing invented

    _, body = submit("provision", cluster_id=cluster["id"])
    worker([body])
    job, body = submit("monitor", cluster_id=cluster["id"])
    worker([body])
    done = job_row(client, job["id"])
    assert done["status"] == "completed" and set(done["result"]["metrics"]) == {"cpu", "memory", "disk", "network"}
    stored = client.get(f"/api/v1/metrics?cluster_id={cluster['id']}").json
    assert stored["total_count"] == 4


def test_job_requested_is_published_after_the_job_is_queued(client, make_cluster, submit, events):
    cluster = make_cluster()
    job, _ = submit("diagnose", cluster_id=cluster["id"])
    [requested] = events(job["id"], "job_requested")
    assert requested["progress"] == 0 and requested["payload"]["parameters"]["cluster_id"] == cluster["id"]


def test_a_crash_at_the_droplets_checkpoint_saves_neither_and_the_retry_adds_one_droplet(
        client, make_cluster, submit, worker, monkeypatch):
    """The droplet's record and the checkpoint naming it are one commit (issue 16): a crash before it saves
    neither, and the retry records the same droplet once."""
    from chalicelib.services import job_runner

    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    real_progress = job_runner.JobRun.progress

    def crash_once(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        monkeypatch.setattr(job_runner.JobRun, "progress", real_progress)
        raise ConnectionError("database link lost before the checkpoint")

    monkeypatch.setattr(job_runner.JobRun, "progress", crash_once)
    assert len(worker([body])["batchItemFailures"]) == 1
    assert droplets_of(cluster["id"]) == []  # the record went with its checkpoint
    assert worker([body]) == {"batchItemFailures": []}
    assert job_row(client, job["id"])["status"] == "completed"
    [droplet] = droplets_of(cluster["id"])
    assert droplet["status"] == "active" and job_row(client, job["id"])["result"]["droplet_id"] == droplet["id"]


@pytest.mark.parametrize("raised, own", [(KeyError("size"), True), ("outage", False), ("conflict", False)])
def test_a_failed_delivery_records_only_the_jobs_own_error(client, make_cluster, submit, worker, monkeypatch,
                                                            raised, own):  # noqa: ANN001
    """Issue 17: the sweeper fails a dead-lettered job only for an error of its own, so the worker records
    one only when the failure was neither an outage nor contention."""
    from chalicelib.errors import ConflictError, DependencyUnavailableError
    from chalicelib.functions import job_worker
    from chalicelib.repositories import JobRepository

    error = {"outage": DependencyUnavailableError("redis"), "conflict": ConflictError("row locked")}.get(raised, raised)
    cluster = make_cluster()
    job, body = submit("diagnose", cluster_id=cluster["id"])

    def failing(run):  # noqa: ANN001
        raise error

    monkeypatch.setattr(job_worker, "run_job", failing)
    assert len(worker([body])["batchItemFailures"]) == 1
    recorded, redrives = JobRepository().attempt_record(job["id"])
    assert redrives == 0
    assert (recorded == "KeyError: 'size'") if own else recorded is None


def _usage(cluster_id: str) -> int:
    return int(db.query("SELECT COALESCE(SUM(n), 0) AS n FROM quota_usage WHERE scope = 'cluster' AND subject = %s "
                        "AND kind = 'live_droplets'", (cluster_id,))[0]["n"])


def test_a_provision_refused_by_the_droplet_quota_as_it_runs_fails_and_leaves_no_droplet(
        client, make_cluster, submit, worker, events):
    """The run-time check counts the droplet the job has just inserted (issue 16: no separate existence read);
    a refusal rolls that insert back with the checkpoint, so no droplet and no counted usage are left."""
    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    first, first_body = submit("provision", cluster_id=cluster["id"])
    assert worker([first_body]) == {"batchItemFailures": []}  # one droplet, then the limit is lowered to it
    response = client.put("/api/v1/quotas", {"cluster_id": cluster["id"], "limits": {"droplets": 1}})
    assert response.status_code == 200, response.body
    assert worker([body]) == {"batchItemFailures": []}  # the job's own failure is acknowledged, not retried
    row = job_row(client, job["id"])
    assert row["status"] == "failed" and "quota exceeded: droplets limit of cluster" in row["error"], row
    assert len(droplets_of(cluster["id"])) == 1 and _usage(cluster["id"]) == 1
    # The start went back with the refused step, and is recorded with the failure: still started, then failed.
    assert [e["type"] for e in events(job["id"], "job_failed")] == ["job_requested", "job_started", "job_failed"]


def test_a_droplet_the_job_already_recorded_is_not_refused_by_the_quota_it_counts_in(
        client, make_cluster, submit, worker):
    """A droplet recorded by an earlier run of the job (under the job's derived id) is not new: the quota that
    already counts it does not refuse the retry, which launches that droplet instead of adding one."""
    from chalicelib.repositories import DropletRepository
    from chalicelib.services.job_runner import _job_droplet_id

    cluster = make_cluster()
    job, body = submit("provision", cluster_id=cluster["id"])
    recorded, inserted = DropletRepository().record(
        droplet_id=_job_droplet_id(job["id"]), cluster_id=cluster["id"], name="earlier-run", region="nyc3",
        size="s-1vcpu-1gb", image="ubuntu-22-04-x64", provider="simulated")
    assert inserted and recorded["status"] == "provisioning"
    again, inserted = DropletRepository().record(
        droplet_id=recorded["id"], cluster_id=cluster["id"], name="other", region="nyc3",
        size="s-1vcpu-1gb", image="ubuntu-22-04-x64", provider="simulated")
    # The row as it was (its `updated_at` aside: the no-op update of the duplicate touches it), by one statement.
    assert not inserted and {**again, "updated_at": None} == {**recorded, "updated_at": None}
    response = client.put("/api/v1/quotas", {"cluster_id": cluster["id"], "limits": {"droplets": 1}})
    assert response.status_code == 200, response.body
    assert worker([body]) == {"batchItemFailures": []}
    assert job_row(client, job["id"])["status"] == "completed"
    [droplet] = droplets_of(cluster["id"])
    assert droplet["id"] == recorded["id"] and droplet["status"] == "active" and _usage(cluster["id"]) == 1


def test_recording_a_droplet_in_a_missing_cluster_is_not_found():
    from chalicelib.errors import NotFoundError
    from chalicelib.repositories import DropletRepository

    with pytest.raises(NotFoundError, match="Cluster not found"):
        DropletRepository().record(droplet_id=f"droplet-{uuid.uuid4()}", cluster_id=f"cluster-{uuid.uuid4()}",
                                   name="x", region="nyc3", size="s-1vcpu-1gb", image="ubuntu-22-04-x64",
                                   provider="simulated")


def test_a_droplet_update_from_the_row_it_knows_returns_the_stored_row_without_reading_it(make_cluster):
    """`update_known` (issue 16) writes against the version it was given and builds the row instead of reading it
    back: the row it returns is the stored one. A droplet changed meanwhile is updated as it is now."""
    from chalicelib.repositories import DropletRepository

    droplets, cluster = DropletRepository(), make_cluster()

    def recorded() -> dict[str, Any]:
        return droplets.record(droplet_id=f"droplet-{uuid.uuid4()}", cluster_id=cluster["id"], name="x",
                               region="nyc3", size="s-1vcpu-1gb", image="ubuntu-22-04-x64", provider="simulated")[0]

    known = recorded()
    updated = droplets.update_known(known, {"status": "active", "ip_address": "10.1.2.3", "provider_instance_id": "i-1"})
    assert updated == droplets.get(known["id"]) and updated["version"] == known["version"] + 1

    stale = recorded()
    droplets.update(stale["id"], {"provider_instance_id": "i-elsewhere"})  # someone else, since `stale` was read
    updated = droplets.update_known(stale, {"status": "active"})
    assert updated == droplets.get(stale["id"])
    assert (updated["status"], updated["provider_instance_id"], updated["version"]) == ("active", "i-elsewhere",
                                                                                        stale["version"] + 2)
