"""Request models (validated at the edge) and response shapes of the v1 API."""
from chalicelib.models.domain import (
    DEFAULT_IMAGE, DEFAULT_PROVIDER, DEFAULT_REGION, DEFAULT_SIZE, DROPLET_SIZES, JOB_TYPES, METRIC_TYPES,
    METRIC_UNITS, PROVIDERS, REGIONS, Cluster, ClusterEnvelope, ClusterList, DiagnosisReport, Droplet,
    Deletion, ErrorResponse, HealthReport, Job, MessageResponse, Metric, iso_utc,
)
from chalicelib.models.wire import DropletEnvelope, DropletList, DropletOut, JobEnvelope, JobOut, JobPage, MetricPage
from chalicelib.models.requests import (
    ClusterListQuery, CreateClusterRequest, CreateDropletRequest, CreateJobRequest, DiagnoseRequest, DropletListQuery,
    JobListQuery, MetricListQuery, PageQuery, UpdateClusterRequest,
)

__all__ = [
    "DEFAULT_IMAGE", "DEFAULT_PROVIDER", "DEFAULT_REGION", "DEFAULT_SIZE", "DROPLET_SIZES", "JOB_TYPES",
    "METRIC_TYPES", "METRIC_UNITS", "PROVIDERS", "REGIONS", "Cluster", "ClusterEnvelope", "ClusterList",
    "DiagnosisReport", "Deletion", "Droplet", "DropletEnvelope", "DropletOut", "JobOut", "DropletList", "ErrorResponse", "HealthReport", "Job",
    "JobEnvelope", "JobPage", "MessageResponse", "Metric", "MetricPage", "iso_utc", "CreateClusterRequest",
    "CreateDropletRequest", "CreateJobRequest", "DiagnoseRequest", "DropletListQuery", "JobListQuery",
    "MetricListQuery", "UpdateClusterRequest", "ClusterListQuery", "PageQuery",
]
