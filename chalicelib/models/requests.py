"""Typed request models: every body and query string is validated here, at the edge.

Bodies are strict (no coercion: `"3"` is not a number) and refuse unknown fields. Query strings arrive
as text, so their numbers are parsed, but still bounded and allow-listed. Each failure names its field
(see `chalicelib.models.validation.describe_validation_error`).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from chalicelib.models.domain import (
    DEFAULT_IMAGE,
    DEFAULT_PROVIDER,
    DROPLET_SIZES,
    PROVIDERS,
    REGIONS,
    ClientJobType,
    ClusterStatus,
    JobType,
    MetricType,
)


def _one_of(allowed: tuple[str, ...], what: str):
    def check(value: str) -> str:
        if value not in allowed:
            raise PydanticCustomError(
                f"unknown_{what}", "unknown {what} {value}; expected one of: {allowed}",
                {"what": what, "value": repr(value[:64]), "allowed": ", ".join(allowed)},
            )
        return value

    return check


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
# Ids are ours (`cluster-<uuid4>` ...); the bound keeps absurd input away from the database.
ResourceId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Region = Annotated[str, AfterValidator(_one_of(REGIONS, "region")), Field(json_schema_extra={"enum": list(REGIONS)})]
Size = Annotated[str, AfterValidator(_one_of(DROPLET_SIZES, "size")), Field(json_schema_extra={"enum": list(DROPLET_SIZES)})]
Provider = Annotated[str, AfterValidator(_one_of(PROVIDERS, "provider")), Field(json_schema_extra={"enum": list(PROVIDERS)})]
Image = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class CreateClusterRequest(RequestBody):
    name: Name
    region: Region


class UpdateClusterRequest(RequestBody):
    name: Name | None = None
    region: Region | None = None
    status: ClusterStatus | None = None
    # Optional compare-and-set: when given, the update applies only to this version (else 409).
    version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> "UpdateClusterRequest":
        if self.name is None and self.region is None and self.status is None:
            raise PydanticCustomError("nothing_to_update", "at least one of name, region, status is required")
        return self


class CreateDropletRequest(RequestBody):
    name: Name
    region: Region
    size: Size
    image: Image = DEFAULT_IMAGE
    # Required (the original allowed none): a droplet is provisioned by a job, and jobs act on a cluster.
    cluster_id: ResourceId
    provider: Provider = DEFAULT_PROVIDER


ParameterKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ParameterValue = Annotated[str, StringConstraints(max_length=1024)]


class CreateJobRequest(RequestBody):
    type: ClientJobType
    parameters: Annotated[
        dict[ParameterKey, ParameterValue],
        Field(max_length=32, json_schema_extra={"required": ["cluster_id"]}),
    ]

    @field_validator("parameters")
    @classmethod
    def _names_a_cluster(cls, parameters: dict[str, str]) -> dict[str, str]:
        cluster_id = parameters.get("cluster_id", "").strip()
        if not cluster_id:
            raise PydanticCustomError("missing_cluster_id", "cluster_id is required (the cluster the job acts on)")
        if len(cluster_id) > 64:
            raise PydanticCustomError("cluster_id_too_long", "cluster_id must be at most 64 characters")
        return {**parameters, "cluster_id": cluster_id}

    @property
    def cluster_id(self) -> str:
        return self.parameters["cluster_id"]


class JobSpec(RequestBody):
    """What `JobService.submit` validates: a job of any type (the control plane's own included), on one
    cluster, with the same parameter rules a client's job has."""

    type: JobType
    cluster_id: ResourceId
    parameters: Annotated[dict[ParameterKey, ParameterValue], Field(max_length=32)]


class DiagnoseRequest(RequestBody):
    cluster_id: ResourceId


class QueryParams(BaseModel):
    """Query strings are text: numbers are parsed (lax), everything else stays allow-listed.

    As the original did (api-v1-wire.md §1.4): a parameter given empty (`?cluster_id=`) is the same as one
    not given, and parameters a route does not read (cache busters such as `?_=123`) are ignored, on every
    route alike. Paging numbers that are not positive integers fall back to their defaults, and a page size
    above the maximum is served at the maximum.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_absent(cls, data: object) -> object:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data


def _paging(default: int, upper: int):
    def coerce(value: object) -> object:
        try:
            number = int(str(value).strip())
        except ValueError:
            return default
        return default if number <= 0 else min(number, upper)

    return BeforeValidator(coerce)


class JobListQuery(QueryParams):
    page: Annotated[int, _paging(1, 1_000_000), Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, _paging(5, 100), Field(ge=1, le=100)] = 5
    # The contract's two sort keys, both backed by an index (idx_jobs_created, the primary key).
    sort_by: Literal["created_at", "id"] = "created_at"
    sort_dir: Literal["asc", "desc"] = "desc"


# Lists without paging in the original (clusters, droplets) are paged here (issue 18) so that no response can
# outgrow Lambda's 6 MB payload: the body keeps the original's envelope (`{"clusters": [...]}`), the page
# arrives with `page`/`page_size` and is described by the X-Total-Count and Link headers.
LIST_DEFAULT_PAGE_SIZE = 100
LIST_MAX_PAGE_SIZE = 500


class PageQuery(QueryParams):
    page: Annotated[int, _paging(1, 1_000_000), Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, _paging(LIST_DEFAULT_PAGE_SIZE, LIST_MAX_PAGE_SIZE),
                         Field(ge=1, le=LIST_MAX_PAGE_SIZE)] = LIST_DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


class ClusterListQuery(PageQuery):
    pass


class DropletListQuery(PageQuery):
    cluster_id: ResourceId | None = None


class MetricListQuery(QueryParams):
    cluster_id: ResourceId | None = None
    type: MetricType | None = None
    page: Annotated[int, _paging(1, 1_000_000), Field(ge=1, le=1_000_000)] = 1
    page_size: Annotated[int, _paging(50, 100), Field(ge=1, le=100)] = 50




# --- quotas (issue 18) -------------------------------------------------------------------------------------
QuotaLimitName = Literal["droplets", "replicas", "concurrent_jobs", "deployments"]
TenantId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                            pattern=r"^[A-Za-z0-9_.:-]+$")]


class QuotaScope(BaseModel):
    """A tenant (`tenant_id`, by default the default tenant) or one cluster (`cluster_id`), not both."""

    tenant_id: TenantId | None = None
    cluster_id: ResourceId | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> "QuotaScope":
        if self.tenant_id is not None and self.cluster_id is not None:
            raise PydanticCustomError("one_scope", "give tenant_id or cluster_id, not both")
        return self

    def resolve(self, default_tenant: str) -> tuple[str, str]:
        return ("cluster", self.cluster_id) if self.cluster_id is not None else ("tenant", self.tenant_id or default_tenant)


class QuotaQuery(QueryParams, QuotaScope):
    pass


class QuotaUpdate(RequestBody, QuotaScope):
    limits: Annotated[dict[QuotaLimitName, Annotated[int, Field(ge=0, le=1_000_000)]], Field(min_length=1)]
