"""Who may run which Set Actions where: checking run grants, the choices they leave a user, and
creating and deleting them, each change audited.

A user runs a Set Action when they hold the permission jobs.run_set_action (Operators) and a
run grant of one of their groups, or their own, covers its action and cluster. Superusers are
no exception: they hold every permission, but run only what a grant covers, and a superuser
who gives themselves a grant leaves an entry in the audit log like anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Cluster, Job, RunGrant

Event = AuditEntry.Event


class NotGranted(PermissionDenied):
    """No run grant of the user covers this action on this cluster."""


class DuplicateGrant(ValidationError):
    """The same grant exists already."""


def _grants_of(user) -> QuerySet[RunGrant]:
    """The grants that apply to `user`: their own, and their groups'."""
    groups = Group.objects.filter(user=user.pk)
    return RunGrant.objects.filter(Q(user=user.pk) | Q(group__in=groups))


def run_granted(*, user, action: int, cluster: Cluster) -> bool:
    """Whether a grant of `user` (or of one of their groups) covers `action` on `cluster`:
    one query. The permission jobs.run_set_action is checked apart (jobs.services.input)."""
    return (
        _grants_of(user)
        .filter(Q(cluster=None) | Q(cluster=cluster.pk), Q(action=None) | Q(action=action))
        .exists()
    )


def run_refusal(*, action: int, cluster: Cluster) -> NotGranted:
    return NotGranted(
        f"You may not run {Job.Action(action).label} on cluster {cluster.name}: "
        "no run grant covers it."
    )


@dataclass(frozen=True)
class RunChoices:
    """What a user's grants cover on the active clusters: the actions (codes, in their order)
    and the clusters, each offered on its own. A pair of them may still not be covered (grants
    for (A, X) and (B, Y) offer A, B and X, Y): the service refuses A on Y when it is asked."""

    actions: list[int]
    clusters: QuerySet[Cluster]

    def __bool__(self) -> bool:
        return bool(self.actions)


def run_choices(*, user) -> RunChoices:
    """The actions and active clusters the grants of `user` cover (none without a grant)."""
    if not user.has_perm("jobs.run_set_action"):
        return RunChoices(actions=[], clusters=Cluster.objects.none())
    grants = list(
        _grants_of(user)
        .filter(Q(cluster=None) | Q(cluster__is_active=True))
        .values_list("cluster", "action")
    )
    if not grants:
        return RunChoices(actions=[], clusters=Cluster.objects.none())
    codes = {action for _cluster, action in grants}
    actions = [code for code in Job.Action.values if None in codes or code in codes]
    clusters = Cluster.objects.filter(is_active=True)
    cluster_ids = {cluster for cluster, _action in grants}
    if None not in cluster_ids:
        clusters = clusters.filter(pk__in=cluster_ids)
    return RunChoices(actions=actions, clusters=clusters)


def grant_details(grant: RunGrant) -> dict:
    """A grant as its audit entries name it: null cluster or action means any; and, when it
    allows it, the cluster's stored credential."""
    details = {
        "grant_id": grant.pk,
        "group": grant.group.name if grant.group_id else None,
        "user": grant.user.get_username() if grant.user_id else None,
        "cluster": grant.cluster.name if grant.cluster_id else None,
        "action": Job.Action(grant.action).label if grant.action else None,
    }
    if grant.may_use_stored_credential:
        details["may_use_stored_credential"] = True
    return details


def run_grant_create(
    *,
    group: Group | None = None,
    user=None,
    cluster: Cluster | None = None,
    action: int | None = None,
    may_use_stored_credential: bool = False,
    actor=None,
    ip_address: str | None = None,
) -> RunGrant:
    """Grant `group` (or `user`: exactly one of them) the running of `action` (None: any) on
    `cluster` (None: any), with its audit entry in the same transaction; with
    `may_use_stored_credential`, also with the cluster's stored credential instead of a token.

    Raises ValidationError (by field) for neither or both grantees or an unknown action, and
    DuplicateGrant when the same grant exists; either way nothing is written. The database's
    unique constraint decides between two requests for the same grant at once.
    """
    if (group is None) == (user is None):
        raise ValidationError({"group": ["Name a group or a user, not both and not neither."]})
    if action is not None and action not in Job.Action.values:
        raise ValidationError({"action": [f"Unknown action {action!r}."]})
    grant = RunGrant(
        group=group,
        user=user,
        cluster=cluster,
        action=action,
        may_use_stored_credential=may_use_stored_credential,
    )
    same = RunGrant.objects.filter(group=group, user=user, cluster=cluster, action=action)
    duplicate = DuplicateGrant(f"This grant exists already ({grant}).")
    if same.exists():
        raise duplicate
    try:
        with transaction.atomic():
            grant.save()
            audit_record(
                event=Event.RUN_GRANT_CREATED,
                actor=actor,
                ip_address=ip_address,
                details=grant_details(grant),
            )
    except IntegrityError:
        if same.exists():
            raise duplicate from None
        raise
    return grant


def run_grant_delete(*, grant: RunGrant, actor=None, ip_address: str | None = None) -> bool:
    """Delete a grant, with its audit entry in the same transaction. False, and nothing
    written, when it was deleted already (by another request at the same moment)."""
    details = grant_details(grant)
    with transaction.atomic():
        deleted, _ = RunGrant.objects.filter(pk=grant.pk).delete()
        if not deleted:
            return False
        audit_record(
            event=Event.RUN_GRANT_DELETED, actor=actor, ip_address=ip_address, details=details
        )
    return True
