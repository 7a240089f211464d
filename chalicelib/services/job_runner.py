"""The work of each job type, run by the job worker once a job is `processing`.

Each runner gets a JobRun (the job, progress reporting, events) and returns the job's result, or raises
JobFailed when the job cannot succeed (bad parameters, a provider refusal): the worker then marks the
job `failed` with that reason and acknowledges the message. Any other exception is an outage (database,
broker): the message is retried and, after maxReceiveCount, dead-lettered.

Runners are safe to re-run after a crash: what they created is recorded in the job's `result` as they
go, and a retry resumes from it instead of creating a second droplet.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.errors import NotFoundError
from chalicelib.models.domain import (
    DEFAULT_IMAGE, DEFAULT_PROVIDER, DEFAULT_REGION, DEFAULT_SIZE, DROPLET_SIZES, REGIONS, Droplet, Job,
)
from chalicelib.observability import logger
from chalicelib.outbox import unit_of_work
from chalicelib.providers import ProviderError, get_provider
from chalicelib.repositories import DropletRepository
from chalicelib.services.job_state import IllegalTransition
from chalicelib.services.jobs import JobService
from chalicelib.services.quotas import QuotaExceededError, QuotaService

# Scale bounds when the job does not name its own.
DEFAULT_MIN_REPLICAS = 1
DEFAULT_MAX_REPLICAS = 10
LIVE_DROPLET_STATUSES = frozenset({"provisioning", "active"})
# Job droplets are named `droplet-<uuid5(this namespace, job id[:index])>` (see `_job_droplet_id`).
_DROPLET_NAMESPACE = uuid.UUID("5b0c1f2e-7d4a-4c53-9f51-0c1a2b3c4d5e")


class JobFailed(Exception):
    """The job cannot succeed; the message is the reason stored in the job's `error`."""


class StartRefused(IllegalTransition):
    """A start left to the runner (`JobRun.ensure_started`) was refused: someone else moved the job since it was
    read (a redelivery, the sweeper). The unit of work it was in is rolled back with it."""


class JobRun:
    """One execution of one job: progress goes to the database first, then out as an event.

    Two of a job's state changes may join a runner's own unit of work instead of committing alone (issue 16):
    - the start (`queued` -> `processing`, `job_started`): a runner in STARTED_BY_FIRST_STEP begins with a local
      write, so the worker leaves the start to it; `ensure_started` records it inside the runner's first unit of
      work (its first progress report or event), and in any case before the first call to a provider;
    - the completion: a runner whose last step is a unit of work may `finish` the job inside it (its last
      progress, then `completed`), and the worker does not complete it again.
    Every state change is still committed with the event announcing it, in the order of the changes.
    """

    def __init__(self, job: Job, jobs: JobService, correlation_id: str | None, *, started: bool = True) -> None:
        self.job = job
        self.jobs = jobs
        self.correlation_id = correlation_id
        self.started = started
        self.finished = False

    @property
    def parameters(self) -> dict[str, str]:
        return self.job.parameters

    @property
    def checkpoint(self) -> dict[str, Any]:
        """What an earlier, interrupted run of this job recorded (empty on a first run)."""
        return self.job.result if isinstance(self.job.result, dict) else {}

    def ensure_started(self, first_report: tuple[int, str, Any] | None = None) -> None:
        """Record the job's start (in the caller's unit of work, if any) unless it is recorded already; with
        `first_report` (progress, message, result) the first progress report is the same write."""
        if not self.started:
            try:
                self.job = self.jobs.start(self.job, self.correlation_id, first_report=first_report)
            except IllegalTransition as exc:
                raise StartRefused(str(exc)) from None
            self.started = True
        elif first_report is not None:
            progress, message, result = first_report
            self.job = self.jobs.report_progress(self.job.id, progress, message, result,
                                                 correlation_id=self.correlation_id, known=self.job)

    def emit(self, event_type: str, message: str, payload: dict[str, Any] | None = None) -> None:
        """Announce something that happened in this job (a droplet created) without a state change."""
        self.ensure_started()
        self.jobs.announce(self.job, event_type, message, payload, correlation_id=self.correlation_id)

    def progress(self, progress: int, message: str, checkpoint: dict[str, Any] | None = None) -> None:
        """Record progress (never decreasing) and, optionally, a checkpoint; JobService announces it."""
        result = {**self.checkpoint, **checkpoint} if checkpoint else None
        self.ensure_started((max(progress, self.job.progress), message, result))

    def finish(self, result: dict[str, Any], last_report: tuple[int, str] | None = None) -> dict[str, Any]:
        """Complete the job with `result` now, in the caller's unit of work, after its last progress report
        `last_report` (progress, message) made with it; the worker then leaves the job as it is."""
        self.ensure_started()
        if last_report is not None:
            last_report = (max(last_report[0], self.job.progress), last_report[1])
        self.job = self.jobs.complete(self.job.id, result, self.correlation_id, last_seen=self.job,
                                      last_report=last_report)
        self.finished = True
        return result


def _parameter(run: JobRun, name: str, default: str, allowed: tuple[str, ...] | None = None) -> str:
    value = run.parameters.get(name) or default
    if allowed is not None and value not in allowed:
        raise JobFailed(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _int_parameter(run: JobRun, name: str, default: int | None) -> int | None:
    raw = run.parameters.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise JobFailed(f"{name}: {raw!r} is not an integer") from None


def _launch(run: JobRun, droplets: DropletRepository, droplet: dict[str, Any],
            then: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Start the recorded droplet on its provider: `active` with an address, or `error` and JobFailed.

    `then(droplet)` runs in the same unit of work as the droplet's activation (the job's next progress
    report): one commit for both, the events in that order."""
    run.ensure_started()  # never a provider call for a job still shown `queued`
    try:
        instance = get_provider(droplet["provider"]).launch(droplet)
    except ProviderError as exc:
        droplets.update(droplet["id"], {"status": "error"})
        raise JobFailed(f"provider {droplet['provider']} failed to launch {droplet['id']}: {exc}") from None
    with unit_of_work():  # the droplet active and its `droplet_created` event: both or neither
        droplet = droplets.update_known(droplet, {"status": "active", "ip_address": instance.ip_address,
                                                  "provider_instance_id": instance.instance_id})
        run.emit("droplet_created", f"droplet {droplet['id']} is active",
                 {"droplet": Droplet.from_row(droplet).model_dump(mode="json")})
        if then is not None:
            then(droplet)
    logger.info("droplet active", extra={"droplet_id": droplet["id"], "ip_address": droplet["ip_address"]})
    return droplet


def _recorded_droplet(run: JobRun, droplets: DropletRepository, droplet_id: str,
                      name: str) -> tuple[dict[str, Any], bool]:
    """The droplet `droplet_id` of the job's cluster, recorded as `provisioning` first if absent (one statement),
    and whether it was inserted now.

    Job droplets have ids derived from the job's (`_job_droplet_id`), so a run that crashed after recording a
    droplet finds the same row on its retry, instead of adding a second droplet or leaving the first one
    `provisioning` for ever."""
    return droplets.record(
        droplet_id=droplet_id, cluster_id=run.job.cluster_id, name=name,
        region=_parameter(run, "region", DEFAULT_REGION, REGIONS),
        size=_parameter(run, "size", DEFAULT_SIZE, DROPLET_SIZES),
        image=_parameter(run, "image", DEFAULT_IMAGE), provider=_parameter(run, "provider", DEFAULT_PROVIDER))


def _within_quota(check: Callable[[QuotaService], None]) -> None:
    """Run a quota check as the job runs (issue 18: checked at request time and again here): JobFailed naming
    the limit when the cluster or its tenant has reached it since the job was requested."""
    try:
        check(QuotaService())
    except QuotaExceededError as exc:
        raise JobFailed(exc.message) from None


def _job_droplet_id(job_id: str, index: int | None = None) -> str:
    """`droplet-<uuid5>` of the job's droplet (provision) or of its `index`-th addition (scale)."""
    return f"droplet-{uuid.uuid5(_DROPLET_NAMESPACE, job_id if index is None else f'{job_id}:{index}')}"


def provision(run: JobRun) -> dict[str, Any]:
    """Create one droplet in the job's cluster (region nyc3, size s-1vcpu-1gb unless the parameters say)."""
    droplets = DropletRepository()
    if "droplet_id" in run.checkpoint:  # a retry after a crash: finish the droplet already recorded
        droplet = droplets.get(run.checkpoint["droplet_id"])
    elif run.parameters.get("droplet_id"):  # a droplet recorded by POST /droplets: launch that one
        droplet = droplets.get(run.parameters["droplet_id"])
        if droplet["cluster_id"] != run.job.cluster_id:
            raise JobFailed(f"droplet {droplet['id']} is not in cluster {run.job.cluster_id}")
        run.progress(30, f"droplet {droplet['id']} recorded", {"droplet_id": droplet["id"]})
    else:
        # The quota check, the droplet's record and the checkpoint naming it: one unit of work (one commit), so
        # both are saved or neither; a crash before the commit leaves nothing, and the retry records the same
        # droplet (its id derives from the job's). Saved before the provider is called (`_launch`).
        # A new droplet's quota is checked again as the job runs, after its insert (so counted already: room for
        # 0 more), which a refusal rolls back: one statement fewer than asking first whether it exists.
        with unit_of_work():
            droplet, new = _recorded_droplet(run, droplets, _job_droplet_id(run.job.id),
                                             run.parameters.get("name") or f"droplet-{run.job.id[4:12]}")
            if new:  # JobFailed here rolls the insert back with this unit of work
                _within_quota(lambda quotas: quotas.check_new_droplets(run.job.cluster_id, 0))
            run.progress(30, f"droplet {droplet['id']} recorded", {"droplet_id": droplet["id"]})

    def active(droplet: dict[str, Any]) -> None:  # the last step: the job completes in its unit of work
        run.finish({"droplet_id": droplet["id"], "ip_address": droplet["ip_address"]},
                   last_report=(90, f"droplet {droplet['id']} is active"))

    if droplet["status"] != "active":
        droplet = _launch(run, droplets, droplet, then=active)
    else:
        with unit_of_work():
            active(droplet)
    return {"droplet_id": droplet["id"], "ip_address": droplet["ip_address"]}


def scale(run: JobRun) -> dict[str, Any]:
    """Add or remove droplets of the job's cluster to reach `replicas` (or the current count plus
    `delta`, default 1), within `min_replicas`..`max_replicas`. Scale-down removes the newest first.

    The plan (target, how many to add, the count it started from) is checkpointed once, and the i-th
    addition always has the same droplet id: a retry launches what an interrupted run recorded
    (`provisioning`) and adds nothing twice."""
    droplets = DropletRepository()
    live = [d for d in droplets.list(run.job.cluster_id) if d["status"] in LIVE_DROPLET_STATUSES]
    if run.checkpoint.get("target") is None:  # fixed once, so that a retry does not apply `delta` twice
        low = _int_parameter(run, "min_replicas", DEFAULT_MIN_REPLICAS)
        high = _int_parameter(run, "max_replicas", DEFAULT_MAX_REPLICAS)
        target = _int_parameter(run, "replicas", None)
        if target is None:
            target = len(live) + _int_parameter(run, "delta", 1)
        if not low <= target <= high:
            raise JobFailed(f"scale target {target} is outside the bounds {low}..{high}")
        _within_quota(lambda quotas: quotas.check_scale(run.job.cluster_id, target, len(live)))
        run.progress(10, f"scaling from {len(live)} to {target} droplets",
                     {"target": target, "adds": max(0, target - len(live)), "base": len(live)})
    plan = run.checkpoint
    target = plan["target"]
    adds, base = plan.get("adds", max(0, target - len(live))), plan.get("base", len(live))
    changes = max(1, adds or len(live) - target)
    added, removed = [], []
    for i in range(adds):
        droplet, _ = _recorded_droplet(run, droplets, _job_droplet_id(run.job.id, i),
                                       f"droplet-{run.job.id[4:12]}-{base + i + 1}")
        if droplet["status"] != "active":
            droplet = _launch(run, droplets, droplet)
        added.append(droplet["id"])
        run.progress(10 + 80 * len(added) // changes, f"added droplet {droplet['id']}")
    live = [d for d in droplets.list(run.job.cluster_id) if d["status"] in LIVE_DROPLET_STATUSES]
    surplus = sorted(live, key=lambda d: (str(d["created_at"]), d["id"]), reverse=True)[:max(0, len(live) - target)]
    for droplet in surplus:  # newest first, and only of this cluster (the original took any cluster's first)
        try:
            get_provider(droplet["provider"]).terminate(droplet)
        except ProviderError as exc:
            raise JobFailed(f"provider {droplet['provider']} failed to terminate {droplet['id']}: {exc}") from None
        droplets.delete(droplet["id"])
        removed.append(droplet["id"])
        run.progress(10 + 80 * len(removed) // changes, f"removed droplet {droplet['id']}")
    return {"target": target, "added": added, "removed": removed}


def diagnose(run: JobRun) -> dict[str, Any]:
    """The cluster's diagnosis report, stored as the job's result."""
    from chalicelib.services.diagnosis import DiagnosisService

    report = DiagnosisService().diagnose(run.job.cluster_id).model_dump(mode="json")
    run.progress(80, "diagnosis done")
    return report


def monitor(run: JobRun) -> dict[str, Any]:
    """A metrics snapshot: the mean utilisation of the cluster's active droplets, one sample per type.
    A cluster with no active droplet records nothing (nothing is invented)."""
    from chalicelib.services.monitoring import MonitoringService

    active = [d for d in DropletRepository().list(run.job.cluster_id) if d["status"] == "active"]
    samples: dict[str, list[float]] = {}
    for droplet in active:
        try:
            for metric_type, value in get_provider(droplet["provider"]).utilisation(droplet).items():
                samples.setdefault(metric_type, []).append(value)
        except ProviderError as exc:
            raise JobFailed(f"provider {droplet['provider']} could not report {droplet['id']}: {exc}") from None
    snapshot = {t: round(sum(v) / len(v), 2) for t, v in samples.items()}
    monitoring = MonitoringService()
    for metric_type, value in snapshot.items():
        monitoring.record(run.job.cluster_id, metric_type, value)
    run.progress(80, f"recorded {len(snapshot)} metrics from {len(active)} droplets")
    return {"droplets": len(active), "metrics": snapshot}


def migrate(run: JobRun) -> dict[str, Any]:
    """Move a droplet to another provider: the replacement first, then the old one retired (issue 8,
    `services/droplet_migration.py`); the replacement's id is checkpointed before it is launched."""
    from chalicelib.services.droplet_migration import DropletMigrationService, MigrationFailed

    try:
        return DropletMigrationService(provider_for=get_provider).run_job(
            run.parameters, run.checkpoint, record=lambda checkpoint: run.progress(30, "replacement recorded", checkpoint))
    except MigrationFailed as exc:
        raise JobFailed(str(exc)) from None


def deploy(run: JobRun) -> dict[str, Any]:
    """Run a deployment's steps, or reverse them (issue 8, `services/deployments.py`)."""
    from chalicelib.services.deployments import DeploymentFailed, DeploymentService

    try:
        return DeploymentService().run_job(run.parameters)
    except DeploymentFailed as exc:
        raise JobFailed(str(exc)) from None


def terminate(run: JobRun) -> dict[str, Any]:
    """Stop a deleted droplet's machine through its provider, then remove the droplet's record. When it
    was the last droplet of a cluster being deleted (`deleting`), the cluster goes too (`cluster_deleted`)."""
    droplets = DropletRepository()
    droplet_id = run.parameters["droplet_id"]
    try:
        droplet = droplets.get(droplet_id)
    except NotFoundError:  # a redelivery after the record was removed: the machine is already gone
        return {"droplet_id": droplet_id, "terminated": True}
    try:
        get_provider(droplet["provider"]).terminate(droplet)
    except ProviderError as exc:
        droplets.update(droplet_id, {"status": "error"})
        raise JobFailed(f"provider {droplet['provider']} failed to terminate {droplet_id}: {exc}") from None
    run.progress(70, f"machine {droplet.get('provider_instance_id')} of {droplet_id} terminated",
                 {"instance_id": droplet.get("provider_instance_id")})
    droplets.delete(droplet_id)
    result = {"droplet_id": droplet_id, "instance_id": droplet.get("provider_instance_id"), "terminated": True}
    from chalicelib.services.clusters import ClusterService

    if ClusterService().finish_deletion(run.job.cluster_id):
        result["cluster_deleted"] = True
    return result


RUNNERS: dict[str, Callable[[JobRun], dict[str, Any]]] = {
    "provision": provision, "scale": scale, "diagnose": diagnose, "monitor": monitor,
    "migrate": migrate, "deploy": deploy, "terminate": terminate,
}


# Runners whose first step is a local write with no provider call before it: the job's start joins that step's
# unit of work (`JobRun.ensure_started`). provision records its droplet (and the quota check) first.
STARTED_BY_FIRST_STEP = frozenset({"provision"})


def run_job(run: JobRun) -> dict[str, Any]:
    """Do the job's work and return its result (JobFailed when it cannot succeed)."""
    runner = RUNNERS.get(run.job.type)
    if runner is None:
        raise JobFailed(f"unknown job type {run.job.type!r}")
    return runner(run)
