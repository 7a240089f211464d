"""Deployments: a version rolled out to a cluster in steps (canary, blue-green, rolling), each step run
by the job pipeline, recorded in the deployment's log and emitted on the `deployments` topic.

`plan` is pure: the traffic percentage each step reaches. `DeploymentService.start` stores the deployment
and enqueues a `deploy` job; the job worker's runner calls `run_job(parameters)`, which executes the
steps (`execute`) or reverses them (`rollback`) synchronously, so tests drive the same code directly.

- A step that fails verification (by default: the cluster's health is `critical` after the step) stops
  the rollout; the deployment ends `failed` with the reason, and the step's failure is in the log.
- Rollback reverses the completed rollout steps, newest first, each logged and emitted, and ends
  `rolled_back` at 0%.
- A re-run after a crash resumes after the last step logged as succeeded: no step runs twice.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import ConflictError, NotFoundError
from chalicelib.models.control_plane import Deployment, StartDeploymentRequest
from chalicelib.observability import logger
from chalicelib.repositories import ClusterRepository
from chalicelib.outbox import unit_of_work
from chalicelib.repositories.deployments import DeploymentRepository

CANARY_STEPS = (10, 50)
ROLLING_INCREMENT = 25
ROLLBACK_FROM = ("succeeded", "failed")

# verify(deployment, step_number, percent) -> None when the step is good, else the reason it failed.
Verifier = Callable[[dict[str, Any], int, int], "str | None"]
# publish(event_type, deployment, message, payload): one event on the `deployments` topic.
Publisher = Callable[[str, dict[str, Any], str, dict[str, Any]], None]


class DeploymentFailed(Exception):
    """The rollout stopped at a failed step; the message is the reason stored on the deployment."""


def plan(strategy: str, target_percent: int) -> list[int]:
    """The traffic percentage reached by each step. Canary: 10%, 50%, then the target; rolling: steps of
    25% up to the target; blue-green: the green copy at 0% (warm, no traffic), then a switch to the target."""
    if strategy == "canary":
        return [p for p in CANARY_STEPS if p < target_percent] + [target_percent]
    if strategy == "rolling":
        return list(range(ROLLING_INCREMENT, target_percent, ROLLING_INCREMENT)) + [target_percent]
    if strategy == "blue-green":
        return [0, target_percent]
    raise ValueError(f"unknown strategy {strategy!r}")


def health_verifier(deployment: dict[str, Any], step: int, percent: int) -> str | None:
    """A step is good unless the cluster's health is critical after it."""
    from chalicelib.services.monitoring import MonitoringService

    report = MonitoringService().health(deployment["cluster_id"])
    if report.status == "critical":
        return f"cluster health critical after step {step}: {', '.join(report.issues)}"
    return None


def publish_to_deployments_topic(event_type: str, deployment: dict[str, Any], message: str,
                                 payload: dict[str, Any]) -> None:
    """The v1 envelope for the `deployments` topic, keyed by cluster, written to the outbox inside the
    caller's unit of work (the relay publishes it)."""
    from chalicelib.events import envelope
    from chalicelib.outbox import record_event

    record_event(topic="deployments", event=envelope(
        event_type, job_id=deployment.get("job_id"), job_type="deploy", cluster_id=deployment["cluster_id"],
        progress=deployment.get("current_percent"), message=message, trace_id=None,
        correlation_id=deployment["id"], payload={"deployment_id": deployment["id"], **payload},
    ))


class DeploymentService:
    def __init__(self, deployments: DeploymentRepository | None = None, clusters: ClusterRepository | None = None,
                 jobs: Any = None, verify: Verifier = health_verifier,
                 publish: Publisher = publish_to_deployments_topic) -> None:
        self.deployments = deployments or DeploymentRepository()
        self.clusters = clusters or ClusterRepository()
        self._jobs = jobs
        self.verify = verify
        self.publish = publish

    @property
    def jobs(self):  # noqa: ANN201 - JobService, imported late
        if self._jobs is None:
            from chalicelib.services.jobs import JobService

            self._jobs = JobService()
        return self._jobs

    # --- API -----------------------------------------------------------------------------------------
    def start(self, request: StartDeploymentRequest, caller: str = "anonymous") -> Deployment:
        """Store the deployment (`pending`) and enqueue its rollout job (NotFoundError: no cluster; 409 when
        the cluster or tenant has its quota of deployments under way or of concurrent jobs)."""
        from chalicelib.services.quotas import QuotaService

        quotas = QuotaService()
        quotas.check_deployment(request.cluster_id)
        quotas.check_job("deploy", request.cluster_id, {})
        row = self.deployments.create(cluster_id=request.cluster_id, version=request.version,
                                      strategy=request.strategy, target_percent=request.target_percent,
                                      plan=plan(request.strategy, request.target_percent))
        self._enqueue(row, "rollout", caller)
        return self.get(row["id"])

    def get(self, deployment_id: str) -> Deployment:
        return Deployment.from_row(self.deployments.get(deployment_id))

    def list(self, cluster_id: str) -> list[Deployment]:
        if not self.clusters.exists(cluster_id):
            raise NotFoundError("Cluster not found")
        return Deployment.from_rows(self.deployments.list(cluster_id))

    def request_rollback(self, deployment_id: str, caller: str = "anonymous") -> Deployment:
        """Mark a finished deployment `rolling_back` and enqueue the rollback job (409 unless it
        succeeded or failed: a running rollout is not reversed under its feet)."""
        self.deployments.move(deployment_id, ROLLBACK_FROM, "rolling_back")
        self._enqueue(self.deployments.get(deployment_id), "rollback", caller)
        return self.get(deployment_id)

    def _enqueue(self, row: dict[str, Any], action: str, caller: str) -> None:
        # `deploy` is an internal job type (not one a client may create); JobService validates it all the same.
        job = self.jobs.submit("deploy", row["cluster_id"], {"deployment_id": row["id"], "action": action},
                               caller=caller)
        self.deployments.set_job(row["id"], job.id)

    # --- the job's work ------------------------------------------------------------------------------
    def run_job(self, parameters: dict[str, str]) -> dict[str, Any]:
        """What the job worker's `deploy` runner calls. Returns the job's result; raises DeploymentFailed
        when the rollout stopped at a failed step (the worker marks the job failed with that reason)."""
        deployment_id = parameters["deployment_id"]
        if parameters.get("action") == "rollback":
            deployment = self.rollback(deployment_id)
        else:
            deployment = self.execute(deployment_id)
        if deployment.status == "failed":
            raise DeploymentFailed(deployment.reason or "deployment failed")
        return {"deployment_id": deployment.id, "status": deployment.status,
                "current_percent": deployment.current_percent}

    def execute(self, deployment_id: str) -> Deployment:
        """Run the remaining rollout steps in order; stop and mark `failed` at the first failed step."""
        row = self.deployments.get(deployment_id)
        if row["status"] in ("succeeded", "failed", "rolling_back", "rolled_back"):
            return Deployment.from_row(row)  # a redelivered job: nothing left to do
        if row["status"] == "pending":
            with unit_of_work():
                self.deployments.move(deployment_id, ("pending",), "running")
                row["status"] = "running"
                self._emit("deployment_started", row, f"deploying {row['version']} ({row['strategy']})", {})
        done = sum(1 for s in row["logs"] if s["action"] == "rollout" and s["status"] == "succeeded")
        for number, percent in enumerate(row["plan"], start=1):
            if number <= done:
                continue
            failure = self.verify(row, number, percent)
            if failure is not None:
                with unit_of_work():
                    self.deployments.log_step(deployment_id, step=number, action="rollout", percent=percent,
                                              status="failed", message=failure)
                    self._emit("deployment_step", row, failure,
                               {"step": number, "action": "rollout", "percent": percent, "status": "failed"})
                    self.deployments.move(deployment_id, ("running",), "failed", reason=f"step {number}: {failure}")
                    self._emit("deployment_failed", row, f"step {number}: {failure}", {"step": number})
                logger.warning("deployment failed", extra={"deployment_id": deployment_id, "step": number})
                return self.get(deployment_id)
            message = self._describe(row, number, percent)
            with unit_of_work():
                self.deployments.log_step(deployment_id, step=number, action="rollout", percent=percent,
                                          status="succeeded", message=message)
                self.deployments.set_progress(deployment_id, percent)
                row["current_percent"] = percent
                self._emit("deployment_step", row, message,
                           {"step": number, "action": "rollout", "percent": percent, "status": "succeeded"})
        with unit_of_work():
            self.deployments.move(deployment_id, ("running",), "succeeded")
            self._emit("deployment_succeeded", row, f"{row['version']} at {row['target_percent']}%", {})
        return self.get(deployment_id)

    def rollback(self, deployment_id: str) -> Deployment:
        """Reverse the completed rollout steps, newest first; end `rolled_back` at 0%."""
        row = self.deployments.get(deployment_id)
        if row["status"] == "rolled_back":
            return Deployment.from_row(row)
        if row["status"] != "rolling_back":
            raise ConflictError(f"deployment {deployment_id} is {row['status']}, not rolling_back")
        completed = [s for s in row["logs"] if s["action"] == "rollout" and s["status"] == "succeeded"]
        reverted = {s["step"] for s in row["logs"] if s["action"] == "rollback"}
        percents = [0] + [s["percent"] for s in completed]
        for index in range(len(completed), 0, -1):
            step = completed[index - 1]
            if step["step"] in reverted:
                continue
            back_to = percents[index - 1]
            message = f"step {step['step']} reversed: {row['version']} back from {step['percent']}% to {back_to}%"
            with unit_of_work():
                self.deployments.log_step(deployment_id, step=step["step"], action="rollback", percent=back_to,
                                          status="succeeded", message=message)
                self.deployments.set_progress(deployment_id, back_to)
                row["current_percent"] = back_to
                self._emit("deployment_step", row, message,
                           {"step": step["step"], "action": "rollback", "percent": back_to, "status": "succeeded"})
        with unit_of_work():
            self.deployments.move(deployment_id, ("rolling_back",), "rolled_back", current_percent=0)
            self._emit("deployment_rolled_back", row, f"{row['version']} rolled back", {})
        return self.get(deployment_id)

    @staticmethod
    def _describe(row: dict[str, Any], number: int, percent: int) -> str:
        if row["strategy"] == "blue-green":
            if percent == 0:
                return f"step {number}: green environment with {row['version']} ready beside blue (0% of traffic)"
            return f"step {number}: traffic switched to green: {percent}% on {row['version']}"
        return f"step {number}: {row['strategy']} {percent}% of traffic on {row['version']}"

    def _emit(self, event_type: str, row: dict[str, Any], message: str, payload: dict[str, Any]) -> None:
        """Record the event in the caller's unit of work: it commits with the step it announces, or neither does."""
        self.publish(event_type, row, message, payload)
