"""Clusters' stored credentials: setting, replacing and removing one (each audited with who
did it and from where), what may be said about one (whether it is set, and when it last
changed), and who may run ad hoc Set Actions with one.

A stored credential is a cluster's service token, kept only encrypted (jobs.tokens). Nothing
here ever decrypts it: only the worker does, when it calls the cluster for a job that uses it
(jobs.services.running), and it audits that use with the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Cluster, ClusterCredential, Job
from jobs.services.grants import NotGranted, _grants_of
from jobs.tokens import token_encrypt, token_errors, token_fingerprint

Event = AuditEntry.Event


@dataclass(frozen=True)
class CredentialStatus:
    """All that is ever shown of a cluster's stored credential."""

    set: bool
    changed_at: datetime | None = None
    changed_by: str | None = None


# Error reports hide every local of this call: the token is one.
@sensitive_variables()
def credential_set(
    *, cluster: Cluster, token: str, actor=None, ip_address: str | None = None
) -> bool:
    """Store `token` as `cluster`'s credential, encrypted, replacing any it had, with its
    audit entry (credential.set, or credential.changed with the old and new fingerprints) in
    the same transaction. Returns True when the cluster had none before.

    Raises ValidationError on "token" (nothing written) for a token a cluster could not be
    sent: empty, longer than MAX_TOKEN_LENGTH, or with anything but visible ASCII. Changes to
    one cluster's credential are made one at a time (its cluster's row locked on PostgreSQL;
    SQLite's transactions take the write lock when they start)."""
    if problems := token_errors(token):
        raise ValidationError({"token": problems})
    fingerprint = token_fingerprint(token)
    ciphertext = token_encrypt(token)
    with transaction.atomic():
        Cluster.objects.select_for_update().filter(pk=cluster.pk).first()
        before = ClusterCredential.objects.filter(cluster=cluster).values("fingerprint").first()
        ClusterCredential.objects.update_or_create(
            cluster=cluster,
            defaults={
                "ciphertext": ciphertext,
                "fingerprint": fingerprint,
                "changed_at": timezone.now(),
                "changed_by": actor if actor is not None and actor.is_authenticated else None,
            },
        )
        details = {"cluster": cluster.name, "fingerprint": fingerprint}
        if before:
            details["previous_fingerprint"] = before["fingerprint"]
        audit_record(
            event=Event.CREDENTIAL_CHANGED if before else Event.CREDENTIAL_SET,
            actor=actor,
            ip_address=ip_address,
            details=details,
        )
    return before is None


def credential_remove(*, cluster: Cluster, actor=None, ip_address: str | None = None) -> bool:
    """Remove `cluster`'s stored credential, with its audit entry in the same transaction.
    False, and nothing written, when it has none (or another request removed it at the same
    moment). Jobs already queued to use it then fail without calling the cluster."""
    with transaction.atomic():
        fingerprint = (
            ClusterCredential.objects.filter(cluster=cluster)
            .values_list("fingerprint", flat=True)
            .first()
        )
        deleted, _ = ClusterCredential.objects.filter(cluster=cluster).delete()
        if not deleted:
            return False
        audit_record(
            event=Event.CREDENTIAL_REMOVED,
            actor=actor,
            ip_address=ip_address,
            details={"cluster": cluster.name, "fingerprint": fingerprint},
        )
    return True


def credential_status(*, cluster: Cluster) -> CredentialStatus:
    """Whether `cluster` has a stored credential, and when and by whom it last changed."""
    row = (
        ClusterCredential.objects.filter(cluster=cluster)
        .values("changed_at", "changed_by__username")
        .first()
    )
    if row is None:
        return CredentialStatus(set=False)
    return CredentialStatus(
        set=True, changed_at=row["changed_at"], changed_by=row["changed_by__username"]
    )


def stored_credential_granted(*, user, action: int, cluster: Cluster) -> bool:
    """Whether a run grant of `user` (or of one of their groups) covering `action` on
    `cluster` lets its holders use the cluster's stored credential: one query."""
    return (
        _grants_of(user)
        .filter(
            Q(cluster=None) | Q(cluster=cluster.pk),
            Q(action=None) | Q(action=action),
            may_use_stored_credential=True,
        )
        .exists()
    )


def stored_credential_usable(*, user, action: int, cluster: Cluster) -> bool:
    """Whether `user` may run `action` on `cluster` with its stored credential now: a grant
    allows it and the cluster has one (what a retry form asks to leave out the token)."""
    return (
        user.has_perm("jobs.run_set_action")
        and stored_credential_granted(user=user, action=action, cluster=cluster)
        and ClusterCredential.objects.filter(cluster=cluster).exists()
    )


def stored_credential_offered(*, user) -> bool:
    """Whether a grant of `user` allows the stored credential on some active cluster that has
    one: the Set Action form then offers it (the service decides for the pair chosen)."""
    if not user.has_perm("jobs.run_set_action"):
        return False
    grants = _grants_of(user).filter(may_use_stored_credential=True)
    stored = ClusterCredential.objects.filter(cluster__is_active=True)
    if not grants.filter(cluster=None).exists():
        stored = stored.filter(cluster__in=grants.values("cluster"))
    return grants.exists() and stored.exists()


def stored_credential_refusal(*, action: int, cluster: Cluster) -> NotGranted:
    return NotGranted(
        f"You may not run {Job.Action(action).label} on cluster {cluster.name} with its "
        "stored credential: no run grant allows it. Give a token."
    )


def stored_credential_problems(*, user, action: int, cluster: Cluster, unattended: bool):
    """Why `user` may not run `action` on `cluster` with its stored credential: raises
    NotGranted (a PermissionDenied) when no grant allows it (unless `unattended`, a
    schedule's run, which needs only the ordinary run grant checked apart), and returns the
    problems to report on "token" (the cluster has none)."""
    if not unattended and not stored_credential_granted(user=user, action=action, cluster=cluster):
        raise stored_credential_refusal(action=action, cluster=cluster)
    if not ClusterCredential.objects.filter(cluster=cluster).exists():
        return [f"Cluster {cluster.name} has no stored credential: give a token."]
    return []
