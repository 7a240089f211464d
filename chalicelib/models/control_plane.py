"""Request and response models of the control plane (issue 8): hello, the provider catalogue and
scheduling, billing, autoscaling policies, droplet migrations and deployments.

Money is `Decimal` end to end. Prices go out as JSON numbers (as v1 clients expect), billing costs as
strings with two decimals (the original's format).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator, Field, PlainSerializer, StringConstraints, model_validator,
)
from pydantic_core import PydanticCustomError

from chalicelib.models.domain import DROPLET_SIZES, METRIC_TYPES, REGIONS, UtcDatetime, _Response
from chalicelib.models.requests import Name, QueryParams, RequestBody, ResourceId, Region, Size


def _decimal(value: Any) -> Decimal:
    """A JSON number (or decimal string) as an exact Decimal; booleans and non-finite values refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise PydanticCustomError("decimal_type", "must be a number")
    try:
        # str() of a float is its shortest round-trip spelling, so 0.06 becomes Decimal("0.06").
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise PydanticCustomError("decimal_parsing", "must be a number") from None
    if not result.is_finite():
        raise PydanticCustomError("decimal_finite", "must be a finite number")
    return result


def _money(field: str, places: int, upper: str):
    def check(value: Decimal) -> Decimal:
        if value <= 0 or value > Decimal(upper):
            raise PydanticCustomError("money_range", "{field}: must be greater than 0 and at most {upper}",
                                      {"field": field, "upper": upper})
        if value != value.quantize(Decimal(1).scaleb(-places)):
            raise PydanticCustomError("money_places", "{field}: at most {places} decimal places",
                                      {"field": field, "places": places})
        return value

    return check


def blank_is_absent(*fields: str):
    """A `mode="before"` model validator: the original's clients send `""` (strings) or `0` (numbers) for an
    optional field they do not use; both mean "not given" here, as they did there."""

    def drop(cls, data: Any) -> Any:  # noqa: ANN001
        if isinstance(data, dict):
            return {k: v for k, v in data.items()
                    if not (k in fields and (v == "" or (not isinstance(v, bool) and v == 0)))}
        return data

    return model_validator(mode="before")(classmethod(drop))


# Prices are exact decimals inside and JSON numbers outside (v1 clients read numbers).
PriceOut = Annotated[Decimal, PlainSerializer(lambda d: float(d), return_type=float, when_used="json")]
ProviderName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                                                pattern=r"^[a-z][a-z0-9-]*$")]


# --- hello ---------------------------------------------------------------------------------------------
class HelloRequest(RequestBody):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] = ""


class HelloResponse(_Response):
    message: str


# --- provider catalogue and scheduling -----------------------------------------------------------------
class ProviderRequest(RequestBody):
    """A catalogue entry; POST creates or replaces the provider of that name."""

    name: ProviderName
    regions: Annotated[list[Region], Field(min_length=1, max_length=len(REGIONS))]
    capacity: Annotated[int, Field(ge=0, le=1_000_000)]
    used: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    classes: Annotated[list[Size], Field(min_length=1, max_length=len(DROPLET_SIZES))]
    # The original console sends no price: such a provider costs the original's default droplet-hour price.
    price_per_hour: Annotated[Decimal, BeforeValidator(_decimal), Field(json_schema_extra={"type": "number"})] = \
        Decimal("0.05")

    @model_validator(mode="after")
    def _consistent(self) -> "ProviderRequest":
        _money("price_per_hour", 6, "1000")(self.price_per_hour)
        if self.used > self.capacity:
            raise PydanticCustomError("used_over_capacity", "used: must not exceed capacity")
        if len(set(self.regions)) != len(self.regions):
            raise PydanticCustomError("duplicate_regions", "regions: must not repeat a region")
        if len(set(self.classes)) != len(self.classes):
            raise PydanticCustomError("duplicate_classes", "classes: must not repeat a size class")
        return self


class Provider(_Response):
    id: str = Field(description="the provider's id: its name (the original's clients read `id`)")
    name: str
    regions: list[str]
    capacity: int
    used: int
    classes: list[str]
    price_per_hour: PriceOut

    @model_validator(mode="before")
    @classmethod
    def _id_is_the_name(cls, value: Any) -> Any:
        if isinstance(value, dict) and "id" not in value and "name" in value:
            value = {**value, "id": value["name"]}
        return value


class ProviderList(_Response):
    items: list[Provider]


class ScheduleRequest(RequestBody):
    cluster_id: ResourceId
    preferred_provider: ProviderName | None = None
    avoid_provider: ProviderName | None = None

    _blanks = blank_is_absent("preferred_provider", "avoid_provider")


class ScheduleCandidate(_Response):
    provider: str
    eligible: bool
    price_per_hour: PriceOut
    region: str | None = None
    reason: str


class ScheduleDecision(_Response):
    provider: str
    region: str
    cluster_id: str
    price_per_hour: PriceOut
    reasons: list[str] = Field(description="why this provider and region, in order")
    candidates: list[ScheduleCandidate] = Field(description="every provider considered, cheapest first")


class ScheduleOut(ScheduleDecision):
    """The decision on the wire: `provider` is the chosen provider's full entry, as the original sent it."""

    provider: Provider  # type: ignore[assignment] - the original's shape of the same field


# --- billing -------------------------------------------------------------------------------------------
class BillingQuery(QueryParams):
    cluster_id: ResourceId


class DropletCost(_Response):
    droplet_id: str
    provider: str
    size: str
    hourly_cost: str
    active_hours: str
    accrued_cost: str


class BillingReport(_Response):
    cluster_id: str
    droplet_count: int
    hourly_cost: str = Field(description="the active droplets' cost per hour, dollars with four decimals (the original's)")
    monthly_cost: str = Field(description="hourly_cost over a 720-hour month (24 x 30), two decimals")
    accrued_cost: str = Field(description="what the active droplets have cost since they were created")
    droplets: list[DropletCost]


# --- droplet migrations --------------------------------------------------------------------------------
class MigrationRequest(RequestBody):
    droplet_id: ResourceId
    target_provider: ProviderName


class MigrationAccepted(_Response):
    ok: bool
    job_id: str
    droplet_id: str
    target_provider: str


# --- autoscaling ---------------------------------------------------------------------------------------
PolicyType = Literal["metrics", "time_of_day", "cost"]
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# metric_trigger is the original's fraction: the metric is compared with trigger x 100, so 0.8 is 80% for
# the percent metrics (at most 1, i.e. 100%) and 80 Mbps for network (at most 1000, i.e. 100 Gbit/s).
METRIC_TRIGGER_MAX = {"cpu": Decimal(1), "memory": Decimal(1), "disk": Decimal(1), "network": Decimal(1000)}


def parse_time_window(window: str) -> tuple[int, int]:
    """`HH:MM-HH:MM` (UTC) as minutes of the day (start, end); a window may wrap midnight."""
    match = _WINDOW.match(window)
    if match is None:
        raise ValueError("time_window: must be HH:MM-HH:MM (UTC, 24-hour)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError("time_window: start and end must differ")
    return start, end


POLICY_BLANKS = ("metric_type", "metric_trigger", "time_window", "cost_limit")
DEFAULT_MIN_REPLICAS, DEFAULT_MAX_REPLICAS = 1, 10


class PolicyFields(RequestBody):
    name: Name
    type: PolicyType
    # The original required neither (and never enforced them): a policy without them gets these bounds.
    min_replicas: Annotated[int, Field(ge=0, le=100)] = DEFAULT_MIN_REPLICAS
    max_replicas: Annotated[int, Field(ge=1, le=100)] = DEFAULT_MAX_REPLICAS
    metric_type: str | None = None
    metric_trigger: Annotated[Decimal, BeforeValidator(_decimal), Field(json_schema_extra={"type": "number"})] | None = None
    time_window: Annotated[str, Field(max_length=16)] | None = None
    cost_limit: Annotated[Decimal, BeforeValidator(_decimal), Field(json_schema_extra={"type": "number"})] | None = None
    enabled: bool = True
    cooldown_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300

    _blanks = blank_is_absent(*POLICY_BLANKS)

    @model_validator(mode="after")
    def _rules(self) -> "PolicyFields":
        if self.min_replicas > self.max_replicas:
            raise PydanticCustomError("replicas", "min_replicas: must not exceed max_replicas")
        if self.metric_type is not None and self.metric_type not in METRIC_TYPES:
            raise PydanticCustomError("metric_type", "metric_type: unknown metric type {value}; expected one of: {allowed}",
                                      {"value": repr(self.metric_type[:32]), "allowed": ", ".join(METRIC_TYPES)})
        if self.type == "metrics":
            if self.metric_type is None:
                raise PydanticCustomError("required", "metric_type: required for a metrics policy")
            if self.metric_trigger is None:
                raise PydanticCustomError("required", "metric_trigger: required for a metrics policy")
        if self.metric_trigger is not None:
            upper = METRIC_TRIGGER_MAX.get(self.metric_type or "cpu", Decimal(1))
            if not Decimal(0) < self.metric_trigger <= upper:
                raise PydanticCustomError(
                    "range", "metric_trigger: must be greater than 0 and at most {upper} (a fraction: 0.8 means 80%)",
                    {"upper": str(upper)})
            if self.metric_trigger != self.metric_trigger.quantize(Decimal("0.000001")):
                raise PydanticCustomError("places", "metric_trigger: at most 6 decimal places")
        if self.type == "time_of_day" and self.time_window is None:
            raise PydanticCustomError("required", "time_window: required for a time_of_day policy")
        if self.time_window is not None:
            try:
                parse_time_window(self.time_window)
            except ValueError as exc:
                raise PydanticCustomError("time_window", str(exc)) from None
        if self.type == "cost" and self.cost_limit is None:
            raise PydanticCustomError("required", "cost_limit: required for a cost policy")
        if self.cost_limit is not None:
            _money("cost_limit", 4, "1000000")(self.cost_limit)
        return self


class CreatePolicyRequest(PolicyFields):
    cluster_id: ResourceId


class UpdatePolicyRequest(RequestBody):
    """Any subset of the policy's fields; the merged policy is validated as a whole."""

    name: Name | None = None
    type: PolicyType | None = None
    min_replicas: Annotated[int, Field(ge=0, le=100)] | None = None
    max_replicas: Annotated[int, Field(ge=1, le=100)] | None = None
    metric_type: str | None = None
    metric_trigger: Annotated[Decimal, BeforeValidator(_decimal), Field(json_schema_extra={"type": "number"})] | None = None
    time_window: Annotated[str, Field(max_length=16)] | None = None
    cost_limit: Annotated[Decimal, BeforeValidator(_decimal), Field(json_schema_extra={"type": "number"})] | None = None
    enabled: bool | None = None
    cooldown_seconds: Annotated[int, Field(ge=0, le=86_400)] | None = None
    # The original console sends the whole form back, its own cluster_id included: accepted when it is the
    # policy's own cluster (checked by the service), refused when it would move the policy.
    cluster_id: ResourceId | None = None

    _blanks = blank_is_absent(*POLICY_BLANKS)


class PolicyListQuery(QueryParams):
    cluster_id: ResourceId


class EvaluateQuery(QueryParams):
    cluster_id: ResourceId


# A policy's unused fields go out as the original sent them: "" and 0, never null or absent.
_BlankText = Annotated[str, BeforeValidator(lambda v: v or "")]
_ZeroNumber = Annotated[Decimal, BeforeValidator(lambda v: Decimal(0) if v is None else v),
                        PlainSerializer(lambda d: float(d), return_type=float, when_used="json")]


class Policy(_Response):
    id: str
    cluster_id: str
    name: str
    type: PolicyType
    min_replicas: int
    max_replicas: int
    metric_type: _BlankText
    metric_trigger: _ZeroNumber = Field(description="a fraction: 0.8 means 80% (compared with the metric x 100)")
    time_window: _BlankText
    cost_limit: _ZeroNumber
    enabled: bool
    cooldown_seconds: int
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class PolicyList(_Response):
    items: list[Policy]


class Deleted(_Response):
    ok: bool
    deleted: str
    message: str


class ScaleDecision(_Response):
    policy_id: str
    policy_type: PolicyType
    action: Literal["scale_up", "scale_down", "none"]
    current: int
    target: int
    reason: str
    job_id: str | None = None


class EvaluationResult(_Response):
    cluster_id: str
    evaluated: int = Field(description="how many enabled policies were evaluated")
    actions: list[ScaleDecision] = Field(description="the scale actions taken, each enqueued as a scale job")
    decisions: list[ScaleDecision] = Field(description="every policy's decision, with its reason")


def action_line(decision: ScaleDecision) -> str:
    """The original's action string: `policy:<id> -> scale_up (<reason>)`."""
    return f"policy:{decision.policy_id} -> {decision.action} ({decision.reason})"


class EvaluationOut(_Response):
    """The evaluation on the wire: `actions` as the original's lines of text; ours as objects beside them."""

    cluster_id: str
    evaluated: int = Field(description="how many enabled policies were evaluated")
    actions: list[str] = Field(description="the scale actions taken, as the original's `policy:<id> -> <action> (...)`")
    scale_actions: list[ScaleDecision] = Field(description="the same actions as objects, each with its scale job")
    decisions: list[ScaleDecision] = Field(description="every policy's decision, with its reason")

    @model_validator(mode="before")
    @classmethod
    def _from_result(cls, value: Any) -> Any:
        if isinstance(value, EvaluationResult):
            value = {**value.model_dump(), "actions": [action_line(a) for a in value.actions],
                     "scale_actions": value.actions}
        return value


# --- deployments ---------------------------------------------------------------------------------------
Strategy = Literal["canary", "blue-green", "rolling"]
DeploymentStatus = Literal["pending", "running", "succeeded", "failed", "rolling_back", "rolled_back"]


class StartDeploymentRequest(RequestBody):
    cluster_id: ResourceId
    version: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                              pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")]
    strategy: Strategy
    target_percent: Annotated[int, Field(ge=1, le=100)] = 100


class DeploymentListQuery(QueryParams):
    cluster_id: ResourceId


class DeploymentLogEntry(_Response):
    step: int
    action: Literal["rollout", "rollback"]
    percent: int
    status: Literal["succeeded", "failed"]
    message: str
    timestamp: UtcDatetime


class Deployment(_Response):
    id: str
    cluster_id: str
    version: str
    strategy: Strategy
    target_percent: int
    status: DeploymentStatus
    current_percent: int
    plan: list[int] = Field(description="the traffic percentage reached by each step, in order")
    reason: str | None = None
    job_id: str | None = None
    logs: list[DeploymentLogEntry]
    created_at: UtcDatetime
    updated_at: UtcDatetime


# Our deployment states in the original's words; `rolling_back` is ours (the original had no such state).
WIRE_DEPLOYMENT_STATUS = {"pending": "pending", "running": "in-progress", "succeeded": "rolled_out", "failed": "failed",
                          "rolling_back": "rolling_back", "rolled_back": "rolled_back"}


def log_line(entry: DeploymentLogEntry) -> str:
    return f"{entry.action} step {entry.step} - {entry.percent}% {entry.status}: {entry.message}"


class DeploymentOut(_Response):
    """A deployment as the original's clients read it: its status words, `logs` as text lines, `started_at`;
    plus ours (the plan, the structured log as `log_entries`, the job)."""

    id: str
    cluster_id: str
    version: str
    strategy: Strategy
    target_percent: int
    status: Literal["pending", "in-progress", "rolled_out", "failed", "rolling_back", "rolled_back"]
    started_at: UtcDatetime
    updated_at: UtcDatetime
    logs: list[str]
    current_percent: int
    plan: list[int] = Field(description="the traffic percentage reached by each step, in order")
    reason: str | None = None
    job_id: str | None = None
    log_entries: list[DeploymentLogEntry]
    created_at: UtcDatetime

    @model_validator(mode="before")
    @classmethod
    def _from_deployment(cls, value: Any) -> Any:
        if isinstance(value, Deployment):
            value = {**value.model_dump(), "status": WIRE_DEPLOYMENT_STATUS[value.status],
                     "started_at": value.created_at, "logs": [log_line(e) for e in value.logs],
                     "log_entries": value.logs}
        return value


class RolledBack(DeploymentOut):
    """The original's rollback answer (`ok`, `rolled_back`), with the deployment it now is."""

    ok: bool
    rolled_back: str


class DeploymentList(_Response):
    items: list[DeploymentOut]
