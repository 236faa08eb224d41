"""The jobs app's models, one module per part: clusters, jobs and their customers, what a
job holds while in progress, who may run what (run grants), approvals, and change freezes and
maintenance windows, and the per-hour counts of ended jobs. Callers import them from
`jobs.models`."""

from jobs.models.approvals import ApprovalDecision, ApprovalRequest, ApprovalRule
from jobs.models.clusters import Cluster
from jobs.models.credentials import ClusterCredential
from jobs.models.freezes import ChangeFreeze, MaintenanceWindow
from jobs.models.grants import RunGrant
from jobs.models.in_progress import InFlightCall, InFlightCustomer, JobToken
from jobs.models.jobs import FailedJob, Job, JobAction, JobCustomer, JobQuerySet, JobStatus
from jobs.models.stats import JobCallTimeHour, JobOutcomeHour

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRule",
    "ChangeFreeze",
    "Cluster",
    "ClusterCredential",
    "FailedJob",
    "InFlightCall",
    "InFlightCustomer",
    "Job",
    "JobAction",
    "JobCallTimeHour",
    "JobCustomer",
    "JobOutcomeHour",
    "JobQuerySet",
    "JobStatus",
    "JobToken",
    "MaintenanceWindow",
    "RunGrant",
]
