from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.chain import CanonicalJSONEncoder


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit entry."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries are append-only: they cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit entries are append-only: they cannot be deleted.")


class AuditEntry(models.Model):
    """One thing that happened, who did it, and to which job. Written by audit.services only.

    Append-only in the ORM (save of an existing entry, update and delete raise) and in the
    database (triggers refuse UPDATE and DELETE; see migrations 0002, 0006, 0017 and 0019:
    only audit.retention's purge deletes, under its permit), and tamper-evident: each entry is
    a link of a hash chain (audit.chain, audit.verify).
    """

    class Event(models.TextChoices):
        SET_ACTION_REQUESTED = "set_action.requested", "Set Action requested"
        JOB_SUCCEEDED = "job.succeeded", "Job succeeded"
        JOB_FAILED = "job.failed", "Job failed"
        JOB_UNKNOWN = "job.unknown", "Job outcome unknown"
        JOB_CANCELLED = "job.cancelled", "Job cancelled before it was sent"
        JOB_RETRIED = "job.retried", "Job retried"
        JOB_LATE_RESULT = "job.late_result", "Result arrived after the job was reaped"
        JOB_DEDUPLICATED = "job.deduplicated", "Duplicate job removed"
        JOB_LOOKED_AT = "job.looked_at", "Unknown outcome looked at"
        LEGACY_IMPORTED = "legacy.imported", "Legacy data imported"
        CLUSTER_CREATED = "cluster.created", "Cluster created"
        CLUSTER_CHANGED = "cluster.changed", "Cluster changed"
        CLUSTER_DEACTIVATED = "cluster.deactivated", "Cluster deactivated"
        CLUSTER_DELETED = "cluster.deleted", "Cluster deleted"
        AUTH_LOGIN = "auth.login", "Signed in"
        AUTH_LOGIN_FAILED = "auth.login_failed", "Sign-in failed"
        AUTH_LOCKED_OUT = "auth.locked_out", "Locked out after failed sign-ins"
        AUTH_LOGOUT = "auth.logout", "Signed out"
        AUTH_SIGNIN_REFUSED = "auth.signin_refused", "Sign-in refused"
        AUTH_USER_CREATED = "auth.user_created", "User created at their first company sign-in"
        AUTH_GROUPS_CHANGED = "auth.groups_changed", "Groups changed by the identity provider"
        AUTH_RENEWAL_REFUSED = "auth.renewal_refused", "Identity provider refused a renewal"
        AUTH_BREAK_GLASS = "auth.break_glass", "Break-glass password sign-in"
        USER_DEACTIVATED = "user.deactivated", "User deactivated"
        API_TOKEN_CREATED = "api_token.created", "API token created"
        API_TOKEN_REVOKED = "api_token.revoked", "API token revoked"
        API_TOKENS_REMOVED = "api_token.removed", "Ended API tokens removed"
        NOTIFICATIONS_CHANGED = "notifications.changed", "Notification settings changed"
        WEBHOOK_CREATED = "webhook.created", "Webhook endpoint created"
        WEBHOOK_CHANGED = "webhook.changed", "Webhook endpoint changed"
        WEBHOOK_DELETED = "webhook.deleted", "Webhook endpoint deleted"
        NOTICES_RESENT = "notices.resent", "Notices queued to be delivered again"
        WEBHOOK_TESTED = "webhook.tested", "Test message sent to a webhook endpoint"
        EMAIL_CHANGE_REQUESTED = "email.change_requested", "E-mail address change requested"
        EMAIL_CHANGED = "email.changed", "E-mail address changed (confirmed)"
        RUN_GRANT_CREATED = "run_grant.created", "Run grant created"
        RUN_GRANT_DELETED = "run_grant.deleted", "Run grant deleted"
        APPROVAL_RULE_CREATED = "approval_rule.created", "Approval rule created"
        APPROVAL_RULE_DELETED = "approval_rule.deleted", "Approval rule deleted"
        APPROVAL_REQUESTED = "approval.requested", "Approval requested"
        APPROVAL_APPROVED = "approval.approved", "Approved"
        APPROVAL_DENIED = "approval.denied", "Denied"
        APPROVAL_EXPIRED = "approval.expired", "Approval expired"
        APPROVAL_WITHDRAWN = "approval.withdrawn", "Approval request withdrawn"
        CREDENTIAL_SET = "credential.set", "Cluster credential set"
        CREDENTIAL_CHANGED = "credential.changed", "Cluster credential changed"
        CREDENTIAL_REMOVED = "credential.removed", "Cluster credential removed"
        CREDENTIAL_USED = "credential.used", "Cluster credential used"
        TOKEN_KEY_ROTATED = "token_key.rotated", "Stored secrets re-encrypted with a new key"
        FREEZE_CREATED = "freeze.created", "Change freeze created"
        FREEZE_DELETED = "freeze.deleted", "Change freeze removed"
        FREEZE_OVERRIDDEN = "freeze.overridden", "Change freeze overridden"
        WINDOW_CREATED = "window.created", "Maintenance window created"
        WINDOW_DELETED = "window.deleted", "Maintenance window removed"
        JOB_HELD = "job.held", "Job held by a change freeze or maintenance window"
        JOB_RELEASED = "job.released", "Job released by a change freeze or maintenance window"
        SAVED_SET_ACTION_CREATED = "saved_set_action.created", "Saved Set Action created"
        SAVED_SET_ACTION_CHANGED = "saved_set_action.changed", "Saved Set Action changed"
        SAVED_SET_ACTION_DELETED = "saved_set_action.deleted", "Saved Set Action deleted"
        SCHEDULE_CREATED = "schedule.created", "Schedule created"
        SCHEDULE_PAUSED = "schedule.paused", "Schedule paused"
        SCHEDULE_RESUMED = "schedule.resumed", "Schedule resumed"
        SCHEDULE_DELETED = "schedule.deleted", "Schedule deleted"
        SCHEDULE_FIRED = "schedule.fired", "Scheduled run submitted"
        SCHEDULE_SKIPPED = "schedule.skipped", "Scheduled run skipped"
        SCHEDULE_QUEUED = "schedule.queued", "Scheduled run queued behind the previous one"
        SCHEDULE_FAILED = "schedule.failed", "Scheduled run failed"
        SCHEDULE_APPROVED = "schedule.approved", "Schedule version approved"
        JOBS_PURGED = "jobs.purged", "Ended jobs archived and purged"
        JOBS_RESTORED = "jobs.restored", "Jobs restored"
        AUDIT_PURGED = "audit.purged", "Old audit entries archived and purged"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # SET_NULL is the one update the database allows: the username below keeps the record.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    # Imported legacy entries carry events outside these choices ("legacy.<action>").
    event = models.CharField(max_length=64, choices=Event.choices)
    # By value, not a foreign key: an entry outlives its job unchanged.
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # Stored on SQLite as the canonical text the hash covers, which the walk hashes as it is.
    details = models.JSONField(default=dict, blank=True, encoder=CanonicalJSONEncoder)
    # The hash chain (audit.chain): the entry's place, the hash of the entry before it, and
    # its own hash over that and its content. Set by audit.services only.
    seq = models.BigIntegerField(unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The audit log's order, newest first, with its filter by event and by username; the
        # audit page's keyset pages seek in the first (lib/keyset.py). A job's entries are few
        # and have job_id's own index; a customer's are its jobs' entries.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_created_id_idx"),
            models.Index(fields=["event", "-created_at", "-id"], name="audit_event_created_id_idx"),
            models.Index(
                fields=["actor_username", "-created_at", "-id"], name="audit_actor_created_id_idx"
            ),
        ]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event} {self.actor_username}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit entries are append-only: an entry cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only: an entry cannot be deleted.")


class ChainCheck(models.Model):
    """The one row of the hourly check of the chain (ops.audit_watch): when the next check is
    due, what the last one found, and the break last reported, so that several hosts check
    once an hour between them and a break is reported once."""

    due_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    # "<seq>:<what is wrong>" of the break last reported, empty once the chain verifies again.
    reported = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"chain checked at {self.checked_at}, head {self.head_seq}"


class ChainAnchor(models.Model):
    """Where the chain starts after a purge (audit.retention): the last purged entry's place
    and hash, and the archive that holds it and those before it. The newest anchor (highest
    `last_seq`) is the chain's start (audit.anchor): its first kept entry must be seq
    `last_seq + 1` linked to `last_hash`. One row per purge, moved on in the transaction of
    each batch it deletes, so that a purge stopped half-way leaves a chain that verifies."""

    purged_at = models.DateTimeField(default=timezone.now)
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField(unique=True)
    last_hash = models.CharField(max_length=64)
    archive = models.CharField(max_length=500)
    archive_sha256 = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"purged seq {self.first_seq} to {self.last_seq} into {self.archive}"


class PurgePermit(models.Model):
    """The DELETE guard's one exception (migration 0019): a row here lets the transaction
    that sees it delete audit entries. audit.retention inserts it inside each batch's
    transaction and removes it before the commit, so no other transaction ever sees one (on
    PostgreSQL an uncommitted row is its own transaction's; SQLite has one writer)."""

    def __str__(self) -> str:
        return f"purge permit {self.pk}"
