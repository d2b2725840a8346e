"""Batch work over Dask: a manifest of jobs (ingest and enhance), computed by workers and
recorded by the one process that holds the signing key (`forensic.batch.runner`).

An interface like the CLI and the workbench: it calls `forensic.api` (plus value types and
errors), and the CLI's ``batch`` command starts it.
"""

from forensic.batch.manifest import Job, load_manifest
from forensic.batch.runner import (
    BatchResult,
    JobOutcome,
    Progress,
    connect,
    default_workers,
    run_batch,
)

__all__ = [
    "BatchResult",
    "Job",
    "JobOutcome",
    "Progress",
    "connect",
    "default_workers",
    "load_manifest",
    "run_batch",
]
