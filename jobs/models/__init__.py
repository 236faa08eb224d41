"""The jobs app's models, one module per part: clusters, jobs and their customers, what a
job holds while in progress, who may run what (run grants), and approvals. Callers import them
from `jobs.models`."""

from jobs.models.approvals import ApprovalDecision, ApprovalRequest, ApprovalRule
from jobs.models.clusters import Cluster
from jobs.models.credentials import ClusterCredential
from jobs.models.grants import RunGrant
from jobs.models.in_progress import InFlightCall, InFlightCustomer, JobToken
from jobs.models.jobs import FailedJob, Job, JobAction, JobCustomer, JobQuerySet, JobStatus

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRule",
    "Cluster",
    "ClusterCredential",
    "FailedJob",
    "InFlightCall",
    "InFlightCustomer",
    "Job",
    "JobAction",
    "JobCustomer",
    "JobQuerySet",
    "JobStatus",
    "JobToken",
    "RunGrant",
]
