"""EventHandler: one small function per event type, each idempotent given the ledger's claim.

- `job_*`: the job's read model in Redis, `events:job:<job_id>` (hash: status, progress, last_event_type,
  last_event_at, cluster_id; served by `job_event_state` at GET /api/v1/jobs/{job_id}/event-state), updated by one Lua script so that progress never goes back and a final
  status (completed/failed) is never overwritten by a late non-final event; a batch's job events are
  written by one script call together with their "applied" marks (`flush`).
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

import datetime as dt
from collections.abc import Callable
from typing import Any

from chalicelib.errors import NotFoundError
from chalicelib.event_pipeline import model
from chalicelib.event_pipeline.counters import BatchCounts
from chalicelib.event_pipeline.ledger import EventLedger
from chalicelib.models.domain import (DEFAULT_IMAGE, DEFAULT_PROVIDER, DEFAULT_REGION, DEFAULT_SIZE,
                                      DROPLET_SIZES, PROVIDERS, REGIONS)
from chalicelib.observability import logger
from chalicelib.tenancy import confined_to

JOB_KEY = "events:job:"
READ_MODEL_TTL_SECONDS = 7 * 24 * 3600
_STATUS_OF = {"job_requested": "queued", "job_started": "processing", "job_progress": "processing",
              "job_completed": "completed", "job_failed": "failed"}
_DROPLET_STATUSES = ("provisioning", "active", "deleting", "deleted", "error")

# The read models of a batch's job events, in their order, then the ledger marks of those events (and of the
# other events settled so far), in one atomic command (issue 16: one script call, not one per event in a
# MULTI). KEYS: n job hashes, then the ledger keys; ARGV[1] = n, then per job: status, progress (-1 = none),
# event type, event time (fixed-width UTC text), cluster id, ttl; last the mark's value and ttl.
_JOB_READ_MODELS = """
local n = tonumber(ARGV[1])
local final = {completed = true, failed = true}
for i = 1, n do
  local key, a = KEYS[i], 1 + (i - 1) * 6
  local cur = redis.call('HMGET', key, 'status', 'progress', 'last_event_at')
  if not (cur[1] and final[cur[1]]) then
    redis.call('HSET', key, 'status', ARGV[a + 1])
  end
  local progress = tonumber(ARGV[a + 2])
  if progress >= 0 and (not cur[2] or progress > tonumber(cur[2])) then
    redis.call('HSET', key, 'progress', progress)
  end
  if not cur[3] or ARGV[a + 4] >= cur[3] then
    redis.call('HSET', key, 'last_event_type', ARGV[a + 3], 'last_event_at', ARGV[a + 4])
  end
  redis.call('HSET', key, 'cluster_id', ARGV[a + 5])
  redis.call('EXPIRE', key, ARGV[a + 6])
end
for i = n + 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[#ARGV - 1], 'EX', ARGV[#ARGV])
end
return 1
"""


def job_event_state(redis: Any, job_id: str) -> dict[str, Any] | None:
    """The job as its events last described it (served at GET /api/v1/jobs/{job_id}/event-state), or
    None when no event about it was handled within READ_MODEL_TTL_SECONDS."""
    state = redis.hgetall(JOB_KEY + job_id)
    if not state:
        return None
    progress = state.get("progress")
    return {"job_id": job_id, "cluster_id": state.get("cluster_id"), "status": state.get("status"),
            "progress": None if progress is None else int(progress), "last_event_type": state.get("last_event_type"),
            "last_event_at": state.get("last_event_at")}


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventHandler:
    """Applies one typed event. `apply` returns after the event's effect and its ledger mark are stored."""

    def __init__(self, redis: Any, ledger: EventLedger, *, scale_cooldown_seconds: int,
                 monitoring: Any = None, droplets: Any = None, autoscaling: Any = None) -> None:
        self.redis = redis
        self.ledger = ledger
        self.scale_cooldown = scale_cooldown_seconds
        self._monitoring, self._droplets, self._autoscaling = monitoring, droplets, autoscaling
        self._telemetry: list[tuple[model.TelemetryEvent, str]] = []
        self._job_events: list[tuple[model.JobEvent, str]] = []
        # Events settled inline (a droplet stored, an event skipped) whose ledger marks and counts wait for
        # `flush`, to go with the batch's other marks in one round trip: (key, "processed" | "skipped", detail).
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

    def _flush_job_events(self, counts: BatchCounts) -> None:
        """The job read models with their marks, and the marks of the events settled so far, in one script call."""
        pending, self._job_events = self._job_events, []
        if not pending:
            return self._flush_settled(counts)
        settled, self._settled = self._settled, []
        marks, mark_args = self.ledger.marks([key for _, key in pending] + [key for key, _, _ in settled])
        args: list[Any] = [len(pending)]
        for event, _ in pending:
            progress = 100 if event.type == "job_completed" else (-1 if event.progress is None else event.progress)
            args += [_STATUS_OF[event.type], progress, event.type, _utc_text(event.timestamp), event.cluster_id,
                     READ_MODEL_TTL_SECONDS]
        self._job_script(keys=[JOB_KEY + event.job_id for event, _ in pending] + marks, args=args + mark_args)
        self._count_settled(settled, counts)
        for event, _ in pending:
            counts.processed(event.type)
            # One line per job event, carrying the job's correlation keys, so `GET /jobs/{id}/logs`
            # shows what the event handler did for that job next to the API's and the worker's lines.
            logger.info("job event applied", extra={"event_type": event.type, "job_id": event.job_id,
                                                    "trace_id": event.trace_id, "cluster_id": event.cluster_id,
                                                    "progress": event.progress})

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
        self._settled.append((key, "processed", event.type))  # marked and counted by `flush`
        if not inserted:
            logger.debug("droplet already listed", extra={"droplet_id": info.id, "cluster_id": event.cluster_id})

    def on_telemetry(self, event: model.TelemetryEvent, key: str, counts: BatchCounts) -> None:
        # Deferred: a batch's telemetry is stored in one transaction and each cluster's health evaluated
        # once (`flush`), instead of a commit and a health evaluation per event.
        self._telemetry.append((event, key))

    def flush(self, counts: BatchCounts) -> None:
        """Apply the deferred work: job read models, then telemetry. Unconfined (every tenant): a threshold alert
        flushes from inside its own tenant's confinement, and the events flushed are of any tenant, each checked
        against its own (a telemetry event naming a tenant is stored only in a cluster of that tenant)."""
        with confined_to(None):
            self._flush_job_events(counts)
            self._flush_telemetry(counts)

    def _flush_telemetry(self, counts: BatchCounts) -> None:
        """Metrics rows of the deferred telemetry and each touched cluster's health, in one transaction
        (`MonitoringService.record_telemetry`); then their ledger marks, with the other settled events'."""
        pending, self._telemetry = self._telemetry, []
        if not pending:
            return
        from chalicelib.services.monitoring import TelemetryItem

        items = []
        for event, key in pending:
            samples = event.payload.samples()
            items.append(TelemetryItem(event.cluster_id, event.tenant_id,
                                       [(s.type, s.value, s.timestamp or event.timestamp) for s in samples],
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
        self._flush_settled(counts)

    def _flush_settled(self, counts: BatchCounts) -> None:
        """The ledger marks of the events settled since the last flush, in one command; then their counts."""
        if not self._settled:
            return
        settled, self._settled = self._settled, []
        self.ledger.done([key for key, _, _ in settled])
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
        """Settled without effect: marked and counted by the next `flush`, or `at_once` (a threshold alert's
        outcome is never evaluated twice)."""
        if at_once:
            self.ledger.done([key])
            counts.skipped(reason)
        else:
            self._settled.append((key, "skipped", reason))
        logger.info("event skipped", extra={"reason": reason, "event_type": event.type,
                                            "cluster_id": event.cluster_id, "event_key": key})
