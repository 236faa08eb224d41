"""The jobs app's models, one module per part: clusters, jobs and their customers, what a
job holds while in progress, who may run what (run grants), approvals, change freezes and
maintenance windows, the marks on UNKNOWN jobs someone looked at, and the per-hour counts of
ended jobs. Callers import them from `jobs.models`."""

from jobs.models.approvals import ApprovalDecision, ApprovalRequest, ApprovalRule
from jobs.models.clusters import Cluster
from jobs.models.credentials import ClusterCredential
from jobs.models.freezes import ChangeFreeze, MaintenanceWindow
from jobs.models.grants import RunGrant
from jobs.models.in_progress import InFlightCall, InFlightCustomer, JobToken
from jobs.models.jobs import (
    ENDED_STATUSES,
    FailedJob,
    Job,
    JobAction,
    JobCustomer,
    JobQuerySet,
    JobStatus,
)
from jobs.models.reviews import MAX_REVIEW_NOTE, JobReview
from jobs.models.stats import JobCallTimeHour, JobOutcomeHour

__all__ = [
    "ENDED_STATUSES",
    "MAX_REVIEW_NOTE",
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
    "JobReview",
    "JobStatus",
    "JobToken",
    "MaintenanceWindow",
    "RunGrant",
]
