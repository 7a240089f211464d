"""EventHandler: one small function per event type, each idempotent given the ledger's claim.

- `job_*`: the job's read model in Redis, `events:job:<job_id>` (`job_models`: status, progress, last_event_type,
  last_event_at, cluster_id; served at GET /api/v1/jobs/{job_id}/event-state), updated by one Lua function so that
  progress never goes back and a final status (completed/failed) is never overwritten by a late non-final event;
  a batch's job events are written by one script call together with their "applied" marks (`flush`), sent before
  the batch's telemetry is stored and answered after it (its round trip overlaps MariaDB's).
- `droplet_created`: a cluster's `droplets` list is derived from the droplets table, so "add the droplet
  to its cluster" means: insert the announced droplet (under its own id) if the table lacks it; a droplet
  already there (the worker that emitted the event created it) is left alone, and one announced by a job of
  ours that is no longer there was deleted since and is not brought back.
- `telemetry`: metrics rows, then the cluster's health status and `last_checked`, by MonitoringService's
  rules (no thresholds here). Deferred to `flush` (end of batch, or before a threshold alert): all rows of
  the batch in one transaction, each cluster's health once.
- `metric_threshold_exceeded`: handed to `AutoscalingService.react_to_alert`: the cluster's enabled
  autoscaling policies decide when it has any; otherwise a scale-up by one droplet. The service's claim
  on `autoscaling_state` is the one cool-down rule; an alert inside it is counted as `scale_cooldown`.
- anything else: counted and skipped.

A valid event about a cluster that does not exist is skipped (`cluster_not_found`), not retried: no retry
can make it apply.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

from chalicelib.errors import NotFoundError
from chalicelib.event_pipeline import job_models, model
from chalicelib.event_pipeline.counters import BatchCounts
from chalicelib.event_pipeline.job_models import JOB_KEY, READ_MODEL_TTL_SECONDS, job_event_state  # noqa: F401 - re-exported
from chalicelib.event_pipeline.ledger import DONE, PREFIX, EventLedger
from chalicelib.models.domain import (DEFAULT_IMAGE, DEFAULT_PROVIDER, DEFAULT_REGION, DEFAULT_SIZE,
                                      DROPLET_SIZES, PROVIDERS, REGIONS)
from chalicelib.observability import logger
from chalicelib.redis_client import PendingScript
from chalicelib.tenancy import confined_to

_DROPLET_STATUSES = ("provisioning", "active", "deleting", "deleted", "error")

# The read models of a batch's job events, in their order, then the ledger marks of those events (and of the
# other events settled so far), in one atomic command (issue 16: one script call, not one per event in a
# MULTI). KEYS: n job hashes, then the ledger keys; ARGV[1] = n, then per job `apply_job`'s arguments
# (job_models.ARGS_PER_JOB); last the mark's value and ttl.
_JOB_READ_MODELS = job_models.APPLY_LUA + f"""
local n, w = tonumber(ARGV[1]), {job_models.ARGS_PER_JOB}
for i = 1, n do
  local a = 1 + (i - 1) * w
  apply_job(KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6])
end
for i = n + 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[#ARGV - 1], 'EX', ARGV[#ARGV])
end
return 1
"""


class _SentJobs(NamedTuple):
    """A batch's job read models on their way (`EventHandler._send_job_events`)."""

    script: PendingScript
    jobs: list[tuple[model.JobEvent, str]]
    settled: list[tuple[str, str, str]]  # events settled before, marked by the same script


class EventHandler:
    """Applies one typed event. Effects are stored by `apply` (droplets, alerts) or `flush` (job read models with
    their marks, telemetry); the other marks by `mark_settled` (or `flush`)."""

    def __init__(self, redis: Any, ledger: EventLedger, *, scale_cooldown_seconds: int,
                 monitoring: Any = None, droplets: Any = None, autoscaling: Any = None) -> None:
        self.redis = redis
        self.ledger = ledger
        self.scale_cooldown = scale_cooldown_seconds
        self._monitoring, self._droplets, self._autoscaling = monitoring, droplets, autoscaling
        self._telemetry: list[tuple[model.TelemetryEvent, str]] = []
        self._job_events: list[tuple[model.JobEvent, str]] = []
        # Events settled (a droplet or telemetry stored, an event skipped) whose ledger marks and counts wait, to
        # go with the batch's other marks in one round trip (`mark_settled`): (key, "processed" | "skipped", detail).
        self._settled: list[tuple[str, str, str]] = []
        self._job_script = redis.register_script(_JOB_READ_MODELS)
        self._handlers: dict[str, Callable[[Any, str, BatchCounts], None]] = {
            **{t: self.on_job_event for t in model.JOB_EVENT_TYPES},
            model.DROPLET_CREATED: self.on_droplet_created,
            model.TELEMETRY_TYPE: self.on_telemetry,
            model.THRESHOLD_EXCEEDED: self.on_threshold_exceeded,
        }

    # Services are built on first use: a batch of job events never loads the database layer.
    @property
    def monitoring(self):
        if self._monitoring is None:
            from chalicelib.services.monitoring import MonitoringService

            self._monitoring = MonitoringService()
        return self._monitoring

    @property
    def droplets(self):
        if self._droplets is None:
            from chalicelib.repositories import DropletRepository

            self._droplets = DropletRepository()
        return self._droplets

    @property
    def autoscaling(self):
        if self._autoscaling is None:
            from chalicelib.services.autoscaling import AutoscalingService

            self._autoscaling = AutoscalingService()
        return self._autoscaling

    def apply(self, event: model.Envelope, key: str, counts: BatchCounts) -> None:
        """Apply (job and telemetry events: defer until `flush`) one event claimed under `key`."""
        handler = self._handlers.get(event.type, self.on_unknown)
        with confined_to(event.tenant_id):  # an event of tenant A never reaches a cluster of tenant B
            handler(event, key, counts)

    # --- one function per type ---------------------------------------------------------------------------
    def on_job_event(self, event: model.JobEvent, key: str, counts: BatchCounts) -> None:
        # Deferred to `flush`: the batch's job events and their ledger marks go in one script call (atomic, one round trip).
        self._job_events.append((event, key))

    def _send_job_events(self) -> _SentJobs | None:
        """Send the job read models with their marks, and the marks of the events settled so far, in one script
        call, without waiting for the answer (`_job_events_applied`)."""
        pending, self._job_events = self._job_events, []
        if not pending:
            return None
        settled, self._settled = self._settled, []
        keys = [job_models.model_key(event.job_id) for event, _ in pending]
        keys += [PREFIX + key for _, key in pending] + [PREFIX + key for key, _, _ in settled]
        args: list[Any] = [len(pending)]
        for event, _ in pending:
            args += job_models.model_args(event)
        return _SentJobs(PendingScript(self.redis, self._job_script, keys, [*args, DONE, self.ledger.done_ttl]),
                         pending, settled)

    def _job_events_applied(self, sent: _SentJobs, counts: BatchCounts) -> None:
        """Wait for the script `_send_job_events` sent (raise if it failed), then count and log."""
        sent.script.result()
        self._count_settled(sent.settled, counts)
        applied: dict[str, list[model.JobEvent]] = {}
        for event, _ in sent.jobs:
            counts.processed(event.type)
            applied.setdefault(event.job_id, []).append(event)
        # One line per job and batch (not per event: a job's events mostly arrive together, and a line per event
        # was half of all log lines shipped), carrying the job's correlation keys, so `GET /jobs/{id}/logs` shows
        # what the event handler did for that job next to the API's and the worker's lines.
        for job_id, events in applied.items():
            last = events[-1]
            logger.info("job events applied", extra={"event_types": [e.type for e in events], "job_id": job_id,
                                                     "trace_id": last.trace_id, "cluster_id": last.cluster_id,
                                                     "progress": last.progress})

    def on_droplet_created(self, event: model.DropletCreatedEvent, key: str, counts: BatchCounts) -> None:
        info = event.payload.droplet
        try:
            inserted = self.droplets.insert_if_absent(
                droplet_id=info.id, cluster_id=event.cluster_id, name=info.name or info.id,
                region=info.region if info.region in REGIONS else DEFAULT_REGION,
                size=info.size if info.size in DROPLET_SIZES else DEFAULT_SIZE,
                image=info.image or DEFAULT_IMAGE,
                provider=info.provider if info.provider in PROVIDERS else DEFAULT_PROVIDER,
                status=info.status if info.status in _DROPLET_STATUSES else "active",
                ip_address=info.ip_address,
                announced_by_job=event.job_id,
            )
        except NotFoundError:
            return self._skip(event, key, counts, "cluster_not_found")
        self._settled.append((key, "processed", event.type))  # marked and counted by `mark_settled`
        if not inserted:
            logger.debug("droplet already listed", extra={"droplet_id": info.id, "cluster_id": event.cluster_id})

    def on_telemetry(self, event: model.TelemetryEvent, key: str, counts: BatchCounts) -> None:
        # Deferred: a batch's telemetry is stored in one transaction and each cluster's health evaluated
        # once (`flush`), instead of a commit and a health evaluation per event.
        self._telemetry.append((event, key))

    def flush(self, counts: BatchCounts, *, mark: bool = True) -> None:
        """Apply the deferred work: job read models (sent first, with the marks of what was settled so far), then
        telemetry; the job models' answer is read after the telemetry is stored, so Redis applies them while MariaDB
        stores it (issue 16), and the job events are applied whether or not the telemetry fails. Then (`mark`) the
        ledger marks of the rest in one command; with `mark=False` they wait for `mark_settled` (the end of the
        batch: with the dead letters' marks, in the same command).

        Unconfined (every tenant): a threshold alert flushes from inside its own tenant's confinement, and the events
        flushed are of any tenant, each checked against its own (a telemetry event naming a tenant is stored only in
        a cluster of that tenant)."""
        with confined_to(None):
            sent = self._send_job_events()
            try:
                self._flush_telemetry(counts)
            except BaseException:
                if sent is not None:
                    with contextlib.suppress(Exception):  # applied, or given back with the other claims
                        self._job_events_applied(sent, counts)
                raise
            if sent is not None:
                self._job_events_applied(sent, counts)
        if mark:
            self.mark_settled(counts)

    def _flush_telemetry(self, counts: BatchCounts) -> None:
        """Metrics rows of the deferred telemetry and each touched cluster's health, in one transaction
        (`MonitoringService.record_telemetry`); their ledger marks wait with the other settled events'."""
        pending, self._telemetry = self._telemetry, []
        if not pending:
            return
        from chalicelib.services.monitoring import TelemetryItem

        items = []
        for event, key in pending:
            samples = event.payload.sample_values(event.timestamp)
            items.append(TelemetryItem(event.cluster_id, event.tenant_id, samples,
                                       # the same on a replay: stored once (migration 0005)
                                       [f"{key}:{index}" for index in range(len(samples))]))
        try:
            stored = self.monitoring.record_telemetry(items)
        except NotFoundError:  # a cluster deleted meanwhile: fall back to one event at a time
            stored = []
            for item in items:
                try:
                    stored += self.monitoring.record_telemetry([item])
                except NotFoundError:
                    stored.append(False)
        for (event, key), ok in zip(pending, stored):
            if ok:  # the rows are in: never insert them again
                self._settled.append((key, "processed", event.type))
            else:
                self._skip(event, key, counts, "cluster_not_found")

    def mark_settled(self, counts: BatchCounts, also: list[str] | None = None) -> None:
        """The ledger marks of the events settled since the last mark, and of `also` (the dead letters the broker
        has stored), in one command; then the settled events' counts."""
        settled, self._settled = self._settled, []
        keys = [key for key, _, _ in settled] + (also or [])
        if keys:
            self.ledger.done(keys)
        self._count_settled(settled, counts)

    @staticmethod
    def _count_settled(settled: list[tuple[str, str, str]], counts: BatchCounts) -> None:
        for _, outcome, detail in settled:
            if outcome == "processed":
                counts.processed(detail)
            else:
                counts.skipped(detail)

    def on_threshold_exceeded(self, event: model.ThresholdEvent, key: str, counts: BatchCounts) -> None:
        self.flush(counts)  # the policies read the latest metrics: the batch's earlier telemetry first
        try:
            outcome = self._scale_for_alert(event, key)
        except NotFoundError:
            return self._skip(event, key, counts, "cluster_not_found", at_once=True)
        if outcome.cooled_down:
            return self._skip(event, key, counts, "scale_cooldown", at_once=True)
        job_id = outcome.job_id
        self.ledger.done([key])
        counts.processed(event.type)
        logger.info("threshold alert handled",
                    extra={"cluster_id": event.cluster_id, "job_id": job_id, "event_key": key})

    def _scale_for_alert(self, event: model.ThresholdEvent, key: str) -> Any:
        """The autoscaling service's outcome: the policies' decision, or a bare scale-up by one droplet.

        The scale job's correlation id is the alert's own (the request that caused it, if the producer
        said), else the alert's id or ledger key: a job can always be traced back to its alert."""
        payload = event.payload
        parameters = {"delta": "1", "reason": model.THRESHOLD_EXCEEDED,
                      **{k: str(payload[k])[:1024] for k in ("metric", "value", "threshold") if k in payload}}
        return self.autoscaling.react_to_alert(event.cluster_id, parameters=parameters,
                                               cooldown_seconds=self.scale_cooldown,
                                               correlation_id=event.correlation_id or event.id or key)

    def discard(self) -> None:
        """Forget deferred work (the batch failed; its claims are being released)."""
        self._telemetry, self._job_events, self._settled = [], [], []

    def on_unknown(self, event: model.Envelope, key: str, counts: BatchCounts) -> None:
        self._skip(event, key, counts, "unknown_type")

    def _skip(self, event: model.Envelope, key: str, counts: BatchCounts, reason: str, at_once: bool = False) -> None:
        """Settled without effect: marked and counted by the next `mark_settled`, or `at_once` (a threshold alert's
        outcome is never evaluated twice)."""
        if at_once:
            self.ledger.done([key])
            counts.skipped(reason)
        else:
            self._settled.append((key, "skipped", reason))
        logger.info("event skipped", extra={"reason": reason, "event_type": event.type,
                                            "cluster_id": event.cluster_id, "event_key": key})
