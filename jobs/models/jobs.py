"""Jobs, their actions and statuses, and the customers each touched."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from jobs.models.clusters import Cluster
from lib.uuids import uuid_prefix_bounds


class JobAction(models.IntegerChoices):
    TRANS_BEGIN = 1, "Trans-Begin"
    PE_ENABLE = 2, "PE-Enable"
    T_ENABLE = 3, "T-Enable"
    PE_FINALIZE = 4, "PE-Finalize"
    PE_DIRECT = 5, "PE-Direct"

    @classmethod
    def from_name(cls, name: str) -> JobAction | None:
        """The action a name means, or None. Case, spaces and punctuation do not count, so
        "PE-Enable", "pe_enable" and "PE ENABLE" are one action; the legacy dashboard's
        "tran-begin" is Trans-Begin."""
        return _ACTIONS_BY_NAME.get(_fold_action_name(name))


def _fold_action_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ACTIONS_BY_NAME = {
    **{_fold_action_name(action.label): action for action in JobAction},
    "tranbegin": JobAction.TRANS_BEGIN,
}


class JobStatus(models.TextChoices):
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    SUCCESS = "SUCCESS", "Success"
    FAILED = "FAILED", "Failed"
    # The process died mid-call: the cluster may or may not have applied the action.
    UNKNOWN = "UNKNOWN", "Unknown outcome"
    # Cancelled while queued: the cluster was never called.
    CANCELLED = "CANCELLED", "Cancelled"
    # Recorded but held until a member of an approval rule's group approves it (see
    # jobs.models.approvals); not sent before then.
    PENDING_APPROVAL = "PENDING_APPROVAL", "Pending approval"
    # Never sent: its approval request was denied, or not decided before its deadline.
    DENIED = "DENIED", "Denied"
    EXPIRED = "EXPIRED", "Expired"


# The statuses a job ends in: it changes no more.
ENDED_STATUSES = (
    JobStatus.SUCCESS,
    JobStatus.FAILED,
    JobStatus.UNKNOWN,
    JobStatus.CANCELLED,
    JobStatus.DENIED,
    JobStatus.EXPIRED,
)


class JobWaitingFor(models.TextChoices):
    CLUSTER = "cluster", "a free call to its cluster"
    FREEZE = "freeze", "a change freeze to end"
    WINDOW = "window", "its cluster's maintenance window"


class JobQuerySet(models.QuerySet):
    def id_starts_with(self, term: str) -> JobQuerySet:
        """Jobs whose id starts with `term` (dashes and case ignored); none if it cannot."""
        bounds = uuid_prefix_bounds(term)
        return self.filter(pk__range=bounds) if bounds else self.none()

    def in_progress(self) -> JobQuerySet:
        return self.filter(status=JobStatus.IN_PROGRESS)

    def failed(self) -> JobQuerySet:
        """Jobs that need attention: FAILED, and UNKNOWN (the outcome is not known)."""
        return self.filter(status__in=[JobStatus.FAILED, JobStatus.UNKNOWN])

    def unknown_not_looked_at(self) -> JobQuerySet:
        """UNKNOWN jobs nobody marked as looked at (jobs.models.reviews): the status indexes
        find the UNKNOWN jobs, and the review's unique job index answers for each."""
        return self.filter(status=JobStatus.UNKNOWN, review__isnull=True)

    def visible_to(self, user) -> JobQuerySet:
        """Everyone's jobs for users with jobs.view_all_jobs (auditors); else their own."""
        if user.has_perm("jobs.view_all_jobs"):
            return self
        return self.filter(user=user)


class Job(models.Model):
    """One call of a Set Action against one cluster, recorded before the cluster is called."""

    Action = JobAction
    Status = JobStatus
    WaitingFor = JobWaitingFor

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    # Not limited to the choices in the database: legacy data holds codes outside them.
    action = models.PositiveSmallIntegerField(choices=JobAction.choices)
    legacy_action_name = models.CharField(
        max_length=100, blank=True, help_text="The action's name as the legacy dashboard wrote it."
    )
    # Indexed by job_cluster_created_idx, which starts with it.
    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="jobs",
        db_index=False,
    )
    # The endpoint, timeout and TLS check the job was submitted with: its worker calls these and
    # the reaper waits by this timeout, whatever happens to the cluster afterwards.
    cluster_url = models.CharField(max_length=500, help_text="The cluster's base URL.")
    action_path = models.CharField(max_length=200, blank=True)
    timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="The cluster's timeout; empty for imported jobs."
    )
    verify_tls = models.BooleanField(default=True)
    batch_id = models.UUIDField(null=True, blank=True, db_index=True)
    batch_seq = models.PositiveIntegerField(
        null=True, blank=True, help_text="The job's place (1, 2, ...) among its batch's chunks."
    )
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.IN_PROGRESS
    )
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    response_summary = models.TextField(blank=True)
    # The cluster's answer as received (jobs.upstream.ClusterAnswer), kept for every job whose
    # call got one, whatever it meant: the token redacted, the body's first 4 KB.
    cluster_answer_status = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The HTTP status the cluster answered with, even one outside 100-599; empty "
        "when no answer came.",
    )
    cluster_answer_content_type = models.CharField(max_length=200, blank=True)
    cluster_answer_body = models.TextField(
        blank=True, help_text="The start of the answer's body, decoded as UTF-8, token redacted."
    )
    cluster_answer_truncated = models.BooleanField(
        default=False, help_text="The body was longer than the 4 KB kept."
    )
    request_payload = models.JSONField(default=dict, blank=True)
    customer_count = models.PositiveIntegerField(default=0)
    # NULL, not "", when absent: the per-user unique constraint applies only to keys that are set.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    submission_digest = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the submission's action, cluster and customers, set on the job "
        "that holds the idempotency key, to refuse the same key with other content.",
    )
    token_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Keyed HMAC of the operator's token; never the token."
    )
    uses_stored_credential = models.BooleanField(
        default=False,
        help_text="Sent with its cluster's stored credential, which the worker decrypts when it "
        "calls the cluster, instead of a token of its own.",
    )
    legacy_id = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        help_text="The job's id in the legacy dashboard, for imported jobs.",
    )
    retry_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="retries"
    )
    approval = models.ForeignKey(
        "jobs.ApprovalRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="jobs",
        help_text="The approval request that holds the job (or its whole batch), when a rule "
        "covered its submission.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set while the job waits for a free call to its cluster "
        "(max_concurrent_calls): when a worker last found the cluster at its limit.",
    )
    waiting_task_id = models.UUIDField(
        null=True,
        blank=True,
        help_text="The queued task that will look again, woken early when a call to the "
        "cluster ends.",
    )
    # Why a queued job waits, as its last claim found (jobs.services.freezes): for a free call
    # to its cluster, for a change freeze to end or for its cluster's maintenance window to
    # open (`waiting_until`: the freeze's end or the window's opening).
    waiting_for = models.CharField(max_length=8, choices=JobWaitingFor.choices, blank=True)
    waiting_until = models.DateTimeField(null=True, blank=True)
    freeze_override_reason = models.TextField(
        blank=True,
        help_text="Why an admin sent this Set Action during a change freeze; empty: never "
        "overridden, and a freeze holds it.",
    )
    freeze_overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("run_set_action", "Can run Set Actions"),
            ("view_all_jobs", "Can view every operator's jobs"),
        ]
        # Each list filter has an index in the lists' newest-first order, so that a page
        # reads only its own rows instead of sorting every match. The id in the status index
        # lets SQLite page the Failed jobs list (two statuses) without sorting all of it.
        # The status and operator indexes end with the other filters' columns: a status or an
        # operator combined with a cluster or an action is then matched, counted and paged
        # from the index alone, without reading each candidate job (tens of thousands for
        # FAILED + a cluster + an action at a million jobs).
        indexes = [
            models.Index(fields=["-created_at"], name="job_created_idx"),
            models.Index(
                fields=["status", "-created_at", "-id", "cluster", "action", "http_status"],
                name="job_status_created_id_idx",
            ),
            models.Index(
                fields=["user", "-created_at", "-id", "cluster", "action"],
                name="job_user_created_idx",
            ),
            # An operator's own jobs in one status: their list's status filter.
            models.Index(
                fields=["user", "status", "-created_at", "-id", "cluster", "action"],
                name="job_user_status_created_idx",
            ),
            # The Failed jobs list (two statuses) in its order: without it, PostgreSQL sorts
            # every failed job for each page.
            models.Index(
                fields=["-created_at", "-id", "cluster", "action", "http_status"],
                condition=Q(status__in=[JobStatus.FAILED, JobStatus.UNKNOWN]),
                name="job_failed_created_idx",
            ),
            models.Index(fields=["action", "-created_at"], name="job_action_created_idx"),
            models.Index(fields=["cluster", "-created_at"], name="job_cluster_created_idx"),
            models.Index(fields=["http_status", "-created_at"], name="job_http_status_created_idx"),
            # The jobs list filtered by when jobs ended (the Overview's bars link there): in one
            # status, in any, and an operator's own in any (in one, the status index is read).
            models.Index(fields=["status", "finished_at"], name="job_status_finished_idx"),
            models.Index(fields=["finished_at"], name="job_finished_idx"),
            models.Index(fields=["user", "finished_at"], name="job_user_finished_idx"),
            # The jobs waiting for each cluster, oldest first: the next to wake.
            models.Index(
                fields=["cluster", "created_at"],
                condition=Q(status="IN_PROGRESS", waiting_since__isnull=False),
                name="job_waiting_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_unique_idempotency_key_per_user",
            ),
            # What the in-flight guard's foreign key references (see InFlightCustomer).
            models.UniqueConstraint(fields=["cluster", "id"], name="job_unique_cluster_id"),
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="job_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(http_status__isnull=True) | Q(http_status__range=(100, 599)),
                name="job_http_status_range",
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)

    @property
    def action_label(self) -> str:
        """The name; for a code outside the five, the legacy name or "Unknown action (N)"."""
        if self.action in self.Action.values:
            return self.Action(self.action).label
        return self.legacy_action_name or f"Unknown action ({self.action})"


class FailedJob(Job):
    """FAILED and UNKNOWN jobs: the admins' front door."""

    class Meta:
        proxy = True
        verbose_name = "failed job"


class JobCustomer(models.Model):
    """A customer (CID) that a job touched, with that customer's outcome when the cluster said."""

    class Outcome(models.TextChoices):
        SUCCESS = "SUCCESS", "Success"
        FAILED = "FAILED", "Failed"

    # The unique (job, cid) index serves lookups by job, so the foreign key needs none of its own.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="customers", db_index=False)
    # Looked up by equality only: an index of its own, not db_index=True, which on PostgreSQL
    # adds a second, pattern-matching index that every submit would write and no query reads.
    cid = models.CharField(max_length=64)
    # NULL until the cluster reports per-customer results, which not every cluster does.
    outcome = models.CharField(  # noqa: DJ001
        max_length=16, choices=Outcome.choices, null=True, blank=True
    )
    message = models.TextField(null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "cid"], name="jobcustomer_unique_job_cid"),
        ]
        indexes = [
            models.Index(fields=["cid"], name="jobs_jobcustomer_cid_2d13aa78"),
            # The customer search's suggestions compare UPPER(cid) (jobs/views/lists.py).
            models.Index(Upper("cid"), name="jobcustomer_cid_upper_idx"),
        ]

    def __str__(self) -> str:
        return self.cid
