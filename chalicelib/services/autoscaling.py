"""Autoscaling: policy CRUD, and the evaluation that turns policies into scale jobs.

`decide` is pure: one policy, the cluster's live droplet count, its latest sample of the policy's metric,
its hourly cost, the time and the last scale time in; an action, a target and a reason out. The rules:

- during the policy's cool-down after the cluster's last autoscale: no action;
- outside min..max replicas: back to the nearest bound (whatever the type);
- metrics: latest `metric_type` sample at or above the threshold -> one more droplet, at or below 60% of
  it -> one fewer, within min..max; no sample -> no action, said so. The threshold is `metric_trigger`
  x 100 in the metric's unit: the trigger is the original's fraction (0.8 means 80%);
- time_of_day: inside its UTC window -> max_replicas; outside it the policy does nothing;
- cost: hourly cost above `cost_limit` -> one fewer droplet, not below min_replicas.

`AutoscalingService.evaluate` applies each enabled policy of one cluster and enqueues at most one scale
job through the JobService (so it goes through SQS like any job), with an absolute `replicas` target and
the policy's bounds, so the job itself scales only that cluster and stays within min..max. The right to
scale is claimed by one conditional UPDATE on `autoscaling_state`: of two racing evaluations, one scales.
That claim is the one cool-down rule: `react_to_alert` (the event handler's `metric_threshold_exceeded`)
takes it too, for the bare scale-up of a cluster without policies.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chalicelib.errors import NotFoundError, ValidationError
from chalicelib.models.control_plane import (
    CreatePolicyRequest, EvaluationResult, Policy, PolicyFields, ScaleDecision, UpdatePolicyRequest,
    parse_time_window,
)
from chalicelib.models.validation import describe_validation_error
from chalicelib.observability import logger
from chalicelib.repositories import ClusterRepository, DropletRepository, MetricRepository
from chalicelib.repositories.policies import PolicyRepository
from chalicelib.services.quotas import QuotaExceededError

# How a decision says the cluster is cooling down (decide's own rule, or a claim lost to another evaluation).
COOLING_DOWN = ("cool-down:", "another evaluation scaled")


@dataclass(frozen=True)
class AlertOutcome:
    """What a threshold alert led to: the scale job (if any), whether the cool-down stopped it, and the
    evaluation of the cluster's enabled policies (`evaluated == 0`: none, so a bare scale-up)."""

    job_id: str | None
    cooled_down: bool
    evaluation: EvaluationResult

LIVE_DROPLET_STATUSES = frozenset({"provisioning", "active"})
SCALE_DOWN_FRACTION = Decimal("0.6")


@dataclass(frozen=True)
class Decision:
    action: str  # scale_up | scale_down | none
    target: int
    reason: str


def _parse_ts(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_window(window: str, now: dt.datetime) -> bool:
    start, end = parse_time_window(window)
    minute = now.astimezone(dt.timezone.utc).hour * 60 + now.astimezone(dt.timezone.utc).minute
    return start <= minute < end if start < end else (minute >= start or minute < end)


def decide(policy: dict[str, Any], current: int, *, metric_value: float | None, hourly_cost: Decimal | None,
           now: dt.datetime, last_scaled_at: dt.datetime | None) -> Decision:
    """What one policy wants for a cluster running `current` live droplets (pure; see the module doc)."""
    low, high = policy["min_replicas"], policy["max_replicas"]
    cooldown = int(policy["cooldown_seconds"])
    if last_scaled_at is not None and (now - last_scaled_at).total_seconds() < cooldown:
        left = cooldown - int((now - last_scaled_at).total_seconds())
        return Decision("none", current, f"{COOLING_DOWN[0]} the cluster was scaled at "
                                         f"{last_scaled_at.isoformat().replace('+00:00', 'Z')}, {left}s left")
    if current < low:
        return Decision("scale_up", low, f"{current} droplets is below min_replicas {low}")
    if current > high:
        return Decision("scale_down", high, f"{current} droplets is above max_replicas {high}")

    kind = policy["type"]
    if kind == "metrics":
        metric = policy["metric_type"]
        # The fraction on the metric's scale (0.8 -> 80), written without trailing zeros in the reasons.
        trigger = Decimal(format((Decimal(policy["metric_trigger"]) * 100).normalize(), "f"))
        if metric_value is None:
            return Decision("none", current, f"no {metric} metrics for this cluster")
        value = Decimal(str(metric_value))
        if value >= trigger:
            if current >= high:
                return Decision("none", current, f"{metric} {value} >= trigger {trigger}, but already at "
                                                 f"max_replicas {high}")
            return Decision("scale_up", current + 1, f"{metric} {value} >= trigger {trigger}")
        floor = trigger * SCALE_DOWN_FRACTION
        if value <= floor:
            if current <= low:
                return Decision("none", current, f"{metric} {value} <= {floor} (60% of the trigger), but already "
                                                 f"at min_replicas {low}")
            return Decision("scale_down", current - 1, f"{metric} {value} <= {floor} (60% of trigger {trigger})")
        return Decision("none", current, f"{metric} {value} is between {floor} and the trigger {trigger}")
    if kind == "time_of_day":
        window = policy["time_window"]
        if not in_window(window, now):
            return Decision("none", current, f"outside the time window {window} (UTC)")
        if current >= high:
            return Decision("none", current, f"inside the time window {window}, already at max_replicas {high}")
        return Decision("scale_up", high, f"inside the time window {window} (UTC): scale to max_replicas {high}")
    if kind == "cost":
        limit = Decimal(policy["cost_limit"])
        cost = hourly_cost if hourly_cost is not None else Decimal(0)
        if cost <= limit:
            return Decision("none", current, f"hourly cost {cost} is within the cost_limit {limit}")
        if current <= low:
            return Decision("none", current, f"hourly cost {cost} exceeds the cost_limit {limit}, but already at "
                                             f"min_replicas {low}")
        return Decision("scale_down", current - 1, f"hourly cost {cost} exceeds the cost_limit {limit}")
    return Decision("none", current, f"unknown policy type {kind!r}")


def _policy_fields(request: PolicyFields) -> dict[str, Any]:
    return request.model_dump(exclude={"cluster_id"})


class AutoscalingService:
    def __init__(self, policies: PolicyRepository | None = None, clusters: ClusterRepository | None = None,
                 droplets: DropletRepository | None = None, metrics: MetricRepository | None = None,
                 jobs: Any = None) -> None:
        self.policies = policies or PolicyRepository()
        self.clusters = clusters or ClusterRepository()
        self.droplets = droplets or DropletRepository()
        self.metrics = metrics or MetricRepository()
        self._jobs = jobs

    @property
    def jobs(self):  # noqa: ANN201 - JobService, imported late (it pulls in the queue and the publisher)
        if self._jobs is None:
            from chalicelib.services.jobs import JobService

            self._jobs = JobService()
        return self._jobs

    # --- CRUD ----------------------------------------------------------------------------------------
    def create(self, request: CreatePolicyRequest) -> Policy:
        return Policy.from_row(self.policies.create(request.cluster_id, _policy_fields(request)))

    def get(self, policy_id: str) -> Policy:
        return Policy.from_row(self.policies.get(policy_id))

    def list(self, cluster_id: str) -> list[Policy]:
        if not self.clusters.exists(cluster_id):
            raise NotFoundError("Cluster not found")
        return Policy.from_rows(self.policies.list(cluster_id))

    def update(self, policy_id: str, request: UpdatePolicyRequest) -> Policy:
        """Merge the given fields into the policy and validate the result as a whole; compare-and-set on
        the version read (409 if another update won)."""
        import pydantic

        row = self.policies.get(policy_id)
        merged = {f: row[f] for f in PolicyFields.model_fields}
        merged["enabled"] = bool(merged["enabled"])
        changes = request.model_dump(exclude_unset=True)
        if changes.pop("cluster_id", row["cluster_id"]) != row["cluster_id"]:
            raise ValidationError("cluster_id: a policy cannot move to another cluster")
        merged.update(changes)
        try:
            fields = PolicyFields.model_validate(merged, strict=False)
        except pydantic.ValidationError as exc:
            raise ValidationError(describe_validation_error(exc)) from None
        return Policy.from_row(self.policies.update(policy_id, row["version"], _policy_fields(fields)))

    def delete(self, policy_id: str) -> None:
        self.policies.delete(policy_id)

    # --- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, cluster_id: str, *, trigger: str = "api", now: dt.datetime | None = None,
                 correlation_id: str | None = None) -> EvaluationResult:
        """Apply every enabled policy of the cluster; enqueue at most one scale job, carrying
        `correlation_id` (what asked: the API request, the alert). NotFoundError when the cluster is
        missing; ServiceUnavailableError when the queue refuses the job, the claim given back."""
        if not self.clusters.exists(cluster_id):
            raise NotFoundError("Cluster not found")
        now = now or dt.datetime.now(dt.timezone.utc)
        policies = self.policies.list(cluster_id, enabled_only=True)
        current = sum(1 for d in self.droplets.list(cluster_id) if d["status"] in LIVE_DROPLET_STATUSES)
        latest = self.metrics.latest_per_type(cluster_id) if any(p["type"] == "metrics" for p in policies) else {}
        hourly_cost = None
        if any(p["type"] == "cost" for p in policies):
            from chalicelib.services.billing import BillingService

            hourly_cost = Decimal(BillingService().cluster_bill(cluster_id, now=now).hourly_cost)
        last_scaled_at = _parse_ts(self.policies.last_scaled_at(cluster_id))

        decisions, actions = [], []
        for policy in policies:
            sample = latest.get(policy["metric_type"]) if policy["type"] == "metrics" else None
            d = decide(policy, current, metric_value=sample["value"] if sample else None, hourly_cost=hourly_cost,
                       now=now, last_scaled_at=last_scaled_at)
            decision = ScaleDecision(policy_id=policy["id"], policy_type=policy["type"], action=d.action,
                                     current=current, target=d.target, reason=d.reason)
            if d.action != "none":
                decision = self._scale(cluster_id, policy, decision, trigger, correlation_id)
                if decision.job_id is not None:
                    actions.append(decision)
                    last_scaled_at = now  # later policies of this evaluation are in the cool-down
            decisions.append(decision)
        logger.info("autoscaler evaluated", extra={"cluster_id": cluster_id, "trigger": trigger,
                                                   "evaluated": len(policies), "actions": len(actions)})
        return EvaluationResult(cluster_id=cluster_id, evaluated=len(policies), actions=actions, decisions=decisions)

    def react_to_alert(self, cluster_id: str, *, parameters: dict[str, str], cooldown_seconds: int,
                       correlation_id: str | None = None) -> AlertOutcome:
        """A `metric_threshold_exceeded` alert: the cluster's enabled policies decide (`evaluate`, the
        schedule's own path) when it has any; otherwise a bare scale job with `parameters`, once per
        `cooldown_seconds`. Either way the cool-down is the claim on `autoscaling_state`, given back if
        the job cannot be queued. NotFoundError when the cluster is missing."""
        evaluation = self.evaluate(cluster_id, trigger="metric_threshold_exceeded", correlation_id=correlation_id)
        if evaluation.evaluated:
            if evaluation.actions:
                return AlertOutcome(evaluation.actions[0].job_id, False, evaluation)
            cooled = any(d.reason.startswith(COOLING_DOWN) for d in evaluation.decisions)
            return AlertOutcome(None, cooled, evaluation)
        won, previous = self.policies.claim_scale(cluster_id, cooldown_seconds)
        if not won:
            return AlertOutcome(None, True, evaluation)
        try:
            job = self.jobs.submit("scale", cluster_id, parameters, caller="event_handler",
                                   correlation_id=correlation_id)
        except QuotaExceededError as exc:  # the quota, not the cool-down, stops this one (issue 18)
            self.policies.release_claim(cluster_id, previous)
            logger.warning("alert scale refused by quota", extra={"cluster_id": cluster_id, "limit": exc.limit})
            return AlertOutcome(None, False, evaluation)
        except Exception:
            self.policies.release_claim(cluster_id, previous)
            raise
        self.policies.record_scale_job(cluster_id, job.id)
        return AlertOutcome(job.id, False, evaluation)

    def _scale(self, cluster_id: str, policy: dict[str, Any], decision: ScaleDecision, trigger: str,
               correlation_id: str | None) -> ScaleDecision:
        won, previous = self.policies.claim_scale(cluster_id, int(policy["cooldown_seconds"]))
        if not won:
            return decision.model_copy(update={
                "action": "none", "target": decision.current,
                "reason": f"{COOLING_DOWN[1]} this cluster within the cool-down (wanted: {decision.reason})"})
        parameters = {"replicas": str(decision.target), "min_replicas": str(policy["min_replicas"]),
                      "max_replicas": str(policy["max_replicas"]), "policy_id": policy["id"], "trigger": trigger,
                      "reason": decision.reason[:1024]}
        try:
            job = self.jobs.submit("scale", cluster_id, parameters, caller=f"autoscaler:{trigger}",
                                   correlation_id=correlation_id)
        except QuotaExceededError as exc:  # the quota, not the cool-down, stops this one (issue 18)
            self.policies.release_claim(cluster_id, previous)
            return decision.model_copy(update={"action": "none", "target": decision.current,
                                               "reason": f"{exc.message} (wanted: {decision.reason})"[:1024]})
        except Exception:
            self.policies.release_claim(cluster_id, previous)
            raise
        self.policies.record_scale_job(cluster_id, job.id)
        return decision.model_copy(update={"job_id": job.id})
