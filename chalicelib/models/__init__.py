"""Request models (validated at the edge) and response shapes of the v1 API.

Names are imported from their submodule on first use (PEP 562): a function that needs the domain rows
(`domain`, `wire`) does not build the request models (`requests`) too, and the job worker, the event
handler and the exporter load no route models at all (issue 16).
"""
from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = {
    "domain": ("DEFAULT_IMAGE", "DEFAULT_PROVIDER", "DEFAULT_REGION", "DEFAULT_SIZE", "DROPLET_SIZES", "JOB_TYPES",
               "METRIC_TYPES", "METRIC_UNITS", "PROVIDERS", "REGIONS", "Cluster", "ClusterEnvelope", "ClusterList",
               "DiagnosisReport", "Droplet", "Deletion", "ErrorResponse", "HealthReport", "Job", "MessageResponse",
               "Metric", "iso_utc"),
    "wire": ("DropletEnvelope", "DropletList", "DropletOut", "JobEnvelope", "JobOut", "JobPage", "MetricPage"),
    "requests": ("ClusterListQuery", "CreateClusterRequest", "CreateDropletRequest", "CreateJobRequest",
                 "DiagnoseRequest", "DropletListQuery", "JobListQuery", "MetricListQuery", "PageQuery",
                 "UpdateClusterRequest"),
}
_EXPORTS = {name: f"{__name__}.{module}" for module, names in _SUBMODULES.items() for name in names}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
