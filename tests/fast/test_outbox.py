"""The transactional outbox and its relay (issue 17), against the real MariaDB and Kafka broker.

- a state change and the event announcing it commit together, or neither does;
- the relay publishes unsent events in the order they were written, each with its outbox id, and marks
  them sent; nothing is marked sent that the broker did not acknowledge;
- an unreachable broker leaves the events unsent (and the API unaffected), the relay backs off, and a
  relay that can reach the broker later publishes them;
- only one relay publishes at a time (the MariaDB relay lock), and the holder looks again after letting go,
  so events committed meanwhile by a relay that found the lock taken are not stranded;
- a relay drops its producer after a failure and publishes with a new one once the broker answers.
"""
from __future__ import annotations

import time

import pytest

from chalicelib import db
from chalicelib.outbox import OutboxRelay, get_outbox_relay
from chalicelib.repositories.outbox import RELAY_LOCK, OutboxRepository
from chalicelib.services.jobs import JobService
from chalicelib.settings import get_settings

from private_redis import free_port
from topic_reader import topic_reader


@pytest.fixture
def cluster_id(clean_db):  # noqa: ANN001
    from chalicelib.repositories import ClusterRepository

    return ClusterRepository().create("outbox", "nyc3")["id"]


@pytest.fixture
def jobs(clean_db, job_queue):  # noqa: ANN001
    return JobService()


def _unsent_types(job_id: str) -> list[str]:
    return [row["event_type"] for row in OutboxRepository().events_of_job(job_id) if row["sent_at"] is None]


def test_a_failed_event_write_rolls_the_state_change_back(jobs, cluster_id, monkeypatch):  # noqa: ANN001
    from chalicelib.services import jobs as jobs_module

    job = jobs.submit("monitor", cluster_id, {})
    jobs.start(job)

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("outbox write failed")

    monkeypatch.setattr(jobs_module, "record_event", broken)
    with pytest.raises(RuntimeError):
        jobs.complete(job.id, {"ok": True})
    assert jobs.get(job.id).status == "processing"  # the completion went with its event
    assert _unsent_types(job.id) == ["job_requested", "job_started"]


def test_a_unit_of_works_events_are_written_in_one_insert_at_commit_in_their_order(jobs, cluster_id,  # noqa: ANN001
                                                                                   monkeypatch):
    """Issue 16: the outbox rows of one unit of work wait for its commit (`db.defer`) and go in one multi-row
    INSERT, with ids in the order the events were recorded; a rollback writes none of them."""
    from chalicelib.outbox import unit_of_work

    job = jobs.start(jobs.submit("monitor", cluster_id, {}))
    statements: list[str] = []
    real_execute = db.pymysql.cursors.Cursor.execute

    def traced(cursor, query, args=None):  # noqa: ANN001
        statements.append(query)
        return real_execute(cursor, query, args)

    monkeypatch.setattr(db.pymysql.cursors.Cursor, "execute", traced)
    with unit_of_work():
        job = jobs.report_progress(job.id, 40, "forty", known=job)
        assert OutboxRepository().events_of_job(job.id)[-1]["event_type"] == "job_started"  # not written yet
        jobs.complete(job.id, {"done": True}, last_seen=job)
    inserts = [q for q in statements if q.startswith("INSERT INTO outbox")]
    assert len(inserts) == 1 and inserts[0].count("(%s, %s, %s, %s, %s, %s)") == 2
    rows = OutboxRepository().events_of_job(job.id)
    assert [r["event_type"] for r in rows] == ["job_requested", "job_started", "job_progress", "job_completed"]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)

    other = jobs.start(jobs.submit("monitor", cluster_id, {}))
    with pytest.raises(RuntimeError), unit_of_work():
        jobs.report_progress(other.id, 10, "ten", known=other)
        raise RuntimeError("the unit of work fails after its event was recorded")
    assert _unsent_types(other.id) == ["job_requested", "job_started"] and jobs.get(other.id).progress == 5
    with unit_of_work():  # and the next unit of work does not write the dropped row
        jobs.report_progress(other.id, 20, "twenty")
    assert [r["body"].count('"progress":20') for r in OutboxRepository().events_of_job(other.id)][-1] == 1
    assert _unsent_types(other.id) == ["job_requested", "job_started", "job_progress"]


def test_a_row_deferred_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="outside a transaction"):
        db.defer("outbox", lambda cursor, rows: None, ("row",))


def test_the_relay_publishes_in_order_with_ids_and_marks_them_sent(jobs, cluster_id, kafka_broker):  # noqa: ANN001
    with topic_reader(get_settings().events_topic, lambda event: event.get("job_id")) as read:
        job = jobs.submit("monitor", cluster_id, {})
        jobs.report_progress(jobs.start(job).id, 50, "halfway")
        jobs.complete(job.id, {"done": True})
        written = OutboxRepository().events_of_job(job.id)
        relay = OutboxRelay()
        result = relay.drain(budget_seconds=10, ignore_backoff=True)
        assert result.sent >= 4 and not result.failed
        assert relay._producer.config["compression_type"] == "lz4"  # lz4-compressed batches, decoded by `read`
        seen = read(job.id, "job_completed")
    assert [e["type"] for e in seen] == ["job_requested", "job_started", "job_progress", "job_completed"]
    assert [e["id"] for e in seen] == [row["event_id"] for row in written]
    assert _unsent_types(job.id) == []
    assert OutboxRepository().backlog()[0] == 0


def test_an_unreachable_broker_keeps_events_unsent_and_backs_off(client, make_cluster, job_queue, kafka_broker):  # noqa: ANN001
    cluster = make_cluster()
    response = client.post("/api/v1/jobs", {"type": "diagnose", "parameters": {"cluster_id": cluster["id"]}})
    assert response.status_code == 201  # the API never talks to the broker
    job_id = response.json["job"]["id"]
    dead = OutboxRelay(bootstrap=f"127.0.0.1:{free_port()}")
    first = dead.drain(budget_seconds=1.0)
    assert first.sent == 0 and first.failed
    assert dead.drain(budget_seconds=1.0).skipped == "backoff"
    assert _unsent_types(job_id) == ["job_requested"]
    unsent, age = OutboxRepository().backlog()
    assert unsent >= 1 and age > 0
    with topic_reader(get_settings().events_topic, lambda event: event.get("job_id")) as read:
        assert get_outbox_relay().drain(budget_seconds=10, ignore_backoff=True).sent >= 1
        [requested] = read(job_id, "job_requested")
    assert requested["type"] == "job_requested" and _unsent_types(job_id) == []


def test_only_one_relay_publishes_at_a_time(jobs, cluster_id):  # noqa: ANN001
    jobs.submit("monitor", cluster_id, {})
    other = db.connect()  # another relay's session
    try:
        with other.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0) AS got", (RELAY_LOCK,))
            assert cur.fetchone()["got"] == 1
        assert OutboxRelay().drain(budget_seconds=1.0, ignore_backoff=True).skipped == "locked"
        assert OutboxRepository().backlog()[0] == 1
    finally:
        other.close()


class _RelayRacedByAWorker(OutboxRelay):
    """While this relay holds the lock, another job commits its event (as a worker batch does) and that
    worker's relay finds the lock taken: the race that left a burst's last events to the next sweep."""

    def __init__(self, jobs: JobService, cluster_id: str) -> None:
        super().__init__()
        self.jobs, self.cluster_id = jobs, cluster_id
        self.raced: list[str] = []

    def _send_unsent(self, result, deadline):  # noqa: ANN001
        super()._send_unsent(result, deadline)
        if not self.raced:
            job = self.jobs.submit("monitor", self.cluster_id, {})
            self.raced.append(job.id)
            other = db.connect()  # the worker's relay, in its own session: it finds the lock taken and leaves
            try:
                with other.cursor() as cur:
                    cur.execute("SELECT GET_LOCK(%s, 0) AS got", (RELAY_LOCK,))
                    assert cur.fetchone()["got"] == 0
            finally:
                other.close()


def test_events_committed_while_the_lock_is_held_are_sent_by_the_holder(jobs, cluster_id, kafka_broker):  # noqa: ANN001
    first = jobs.submit("monitor", cluster_id, {})
    relay = _RelayRacedByAWorker(jobs, cluster_id)
    with topic_reader(get_settings().events_topic, lambda event: event.get("job_id")) as read:
        result = relay.drain(budget_seconds=10, ignore_backoff=True)
        [late] = relay.raced
        assert result.sent == 2 and not result.failed and result.skipped is None
        assert [e["type"] for e in read(late, "job_requested")] == ["job_requested"]
    assert _unsent_types(first.id) == [] and _unsent_types(late) == []


def test_a_relay_drops_its_producer_after_a_failure_and_recovers_with_a_new_one(jobs, cluster_id,  # noqa: ANN001
                                                                               kafka_broker):
    job = jobs.submit("monitor", cluster_id, {})
    relay = OutboxRelay(bootstrap=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    assert relay.drain(budget_seconds=1.0).failed
    # A bound on blocking, not a speed figure: kafka-python's constructor waited 30 s for an unreachable broker
    # whatever the relay's budget (a worker's relay after its batch with the broker down); now at most 2 s.
    assert time.monotonic() - started < 10
    assert relay._producer is None  # the client that failed is gone
    relay.bootstrap = get_settings().kafka_bootstrap  # the broker is reachable again
    with topic_reader(get_settings().events_topic, lambda event: event.get("job_id")) as read:
        assert relay.drain(budget_seconds=10, ignore_backoff=True).sent == 1
        [requested] = read(job.id, "job_requested")
    assert requested["type"] == "job_requested" and _unsent_types(job.id) == []
    assert relay._producer is not None


def test_the_outbox_backlog_is_on_the_metrics_page(jobs, cluster_id):  # noqa: ANN001
    from chalicelib.metrics import exposition

    jobs.submit("monitor", cluster_id, {})
    text = exposition.render([exposition.ScrapeTimeCollector(dlq_depth=lambda: 0, job_queue=lambda: (0, 0),
                                                                event_failures=lambda: 0)]).decode()
    assert "clustergenie_outbox_unsent 1.0" in text
    line = next(x for x in text.splitlines() if x.startswith("clustergenie_outbox_oldest_unsent_seconds "))
    assert float(line.split()[1]) > 0
