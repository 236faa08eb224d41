"""Saving a Set Action to run later or on a schedule, and editing it: each checked exactly
as a submit is (jobs.services: the action, the cluster, the customers, the run grant), all
problems reported together and nothing written on bad input. Every edit writes a new version,
audited; a run records the version it ran."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Cluster, Job
from jobs.services import set_action_checked
from schedules.models import SavedSetAction, SavedSetActionVersion
from schedules.services.access import may_manage

Event = AuditEntry.Event
MAX_NAME_LENGTH = 100


def _name(value) -> str:
    name = str(value or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the saved Set Action a name."]})
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError({"name": [f"A name has at most {MAX_NAME_LENGTH} characters."]})
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError({"name": ["A name may not contain control characters."]})
    return name


def _version(saved: SavedSetAction, user, at) -> SavedSetActionVersion:
    return SavedSetActionVersion.objects.create(
        saved=saved,
        version=saved.version,
        name=saved.name,
        action=saved.action,
        cluster=saved.cluster,
        cluster_name=saved.cluster.name if saved.cluster_id else "",
        cids=saved.cids,
        customer_count=saved.customer_count,
        edited_by=user,
        edited_at=at,
    )


def _details(saved: SavedSetAction) -> dict:
    return {
        "saved_set_action": saved.pk,
        "name": saved.name,
        "version": saved.version,
        "action": Job.Action(saved.action).label,
        "cluster": saved.cluster.name if saved.cluster_id else None,
        "customers": saved.customer_count,
    }


def _taken(name: str) -> ValidationError:
    return ValidationError({"name": [f"You already have a saved Set Action named {name!r}."]})


def saved_set_action_create(
    *,
    user,
    name: str,
    action: int | str,
    cluster: Cluster | str,
    cids: str | Sequence[str],
    cid_positions: Sequence[str] | None = None,
    ip_address: str | None = None,
) -> SavedSetAction:
    """Save a Set Action of `user` as version 1, audited. Raises ValidationError (by field)
    or PermissionDenied as a submit would, and on a name `user` already uses; writes nothing
    then."""
    errors: dict[str, list[str]] = {}
    try:
        name = _name(name)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        action, cluster, cid_list = set_action_checked(
            user=user, action=action, cluster=cluster, cids=cids, cid_positions=cid_positions
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    try:
        with transaction.atomic():
            saved = SavedSetAction.objects.create(
                owner=user,
                name=name,
                action=action,
                cluster=cluster,
                cids="\n".join(cid_list),
                customer_count=len(cid_list),
                version=1,
                created_at=now,
                updated_at=now,
            )
            _version(saved, user, now)
            audit_record(
                event=Event.SAVED_SET_ACTION_CREATED,
                actor=user,
                ip_address=ip_address,
                details=_details(saved),
            )
    except IntegrityError:
        raise _taken(name) from None
    return saved


def saved_set_action_edit(
    *,
    saved: SavedSetAction,
    user,
    name: str | None = None,
    action: int | str | None = None,
    cluster: Cluster | str | None = None,
    cids: str | Sequence[str] | None = None,
    cid_positions: Sequence[str] | None = None,
    ip_address: str | None = None,
) -> SavedSetAction:
    """Change what `saved` holds (each argument left None keeps its value) as a new version,
    audited, by its owner or an admin. The result is checked as a submit by its owner (who
    runs it) would be; nothing is written on bad input, nor when nothing changes. Two edits
    at once: the second is refused (its version was taken), never lost silently."""
    if not may_manage(user, saved.owner_id):
        raise PermissionDenied("Only its owner or an admin may change a saved Set Action.")
    errors: dict[str, list[str]] = {}
    new_name = saved.name
    if name is not None:
        try:
            new_name = _name(name)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    try:
        new_action, new_cluster, cid_list = set_action_checked(
            user=saved.owner,
            action=saved.action if action is None else action,
            cluster=(saved.cluster if saved.cluster_id else "") if cluster is None else cluster,
            cids=saved.cid_list if cids is None else cids,
            cid_positions=None if cids is None else cid_positions,
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    new_cids = "\n".join(cid_list)
    if (new_name, new_action, new_cluster.pk, new_cids) == (
        saved.name,
        saved.action,
        saved.cluster_id,
        saved.cids,
    ):
        return saved
    now = timezone.now()
    try:
        with transaction.atomic():
            changed = SavedSetAction.objects.filter(pk=saved.pk, version=saved.version).update(
                name=new_name,
                action=new_action,
                cluster=new_cluster,
                cids=new_cids,
                customer_count=len(cid_list),
                version=saved.version + 1,
                updated_at=now,
            )
            if not changed:
                raise ValidationError(
                    "Someone else changed this saved Set Action meanwhile: reload it and "
                    "edit again."
                )
            saved.refresh_from_db()
            _version(saved, user, now)
            audit_record(
                event=Event.SAVED_SET_ACTION_CHANGED,
                actor=user,
                ip_address=ip_address,
                details={**_details(saved), "owner": saved.owner.get_username()},
            )
    except IntegrityError:
        raise _taken(new_name) from None
    return saved


def saved_set_action_delete(*, saved: SavedSetAction, user, ip_address: str | None = None) -> None:
    """Delete `saved` and its versions, audited, by its owner or an admin; refused while a
    schedule runs it (delete the schedule first)."""
    if not may_manage(user, saved.owner_id):
        raise PermissionDenied("Only its owner or an admin may delete a saved Set Action.")
    with transaction.atomic():
        if saved.schedules.exists():
            raise ValidationError(
                "A schedule runs this saved Set Action: delete its schedules first."
            )
        audit_record(
            event=Event.SAVED_SET_ACTION_DELETED,
            actor=user,
            ip_address=ip_address,
            details=_details(saved),
        )
        saved.delete()
