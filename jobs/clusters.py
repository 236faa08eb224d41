"""Every write to a cluster goes through this module, audited with who did it and what changed.

The rules a cluster must meet (where the operators' tokens may be sent) are `Cluster.clean()`'s,
run here before anything is written, whichever interface asked: the admin, `seed_demo`, the API.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Cluster

Event = AuditEntry.Event
FIELDS = (
    "name",
    "base_url",
    "action_path",
    "timeout_seconds",
    "max_cids_per_request",
    "max_concurrent_calls",
    "verify_tls",
    "environment",
    "is_active",
)


def _values(cluster: Cluster) -> dict[str, Any]:
    return {name: getattr(cluster, name) for name in FIELDS}


def cluster_save(*, cluster: Cluster, actor=None, ip_address: str | None = None) -> Cluster:
    """Check and save a new or changed cluster, with its audit entry in the same transaction.

    Raises ValidationError (by field) and writes nothing when the cluster breaks a rule.
    A new cluster is `cluster.created`; a change `cluster.changed`, or `cluster.deactivated`
    when it turns the cluster off, holding the values before and after of what changed. Saving
    with nothing changed writes no entry.
    """
    cluster.full_clean()
    with transaction.atomic():
        before = None
        if cluster.pk is not None:
            before = (
                Cluster.objects.select_for_update().filter(pk=cluster.pk).values(*FIELDS).first()
            )
        cluster.save()
        after = _values(cluster)
        if before is None:
            event, details = Event.CLUSTER_CREATED, {"after": after}
        else:
            changed = [name for name in FIELDS if before[name] != after[name]]
            if not changed:
                return cluster
            turned_off = before["is_active"] and not after["is_active"]
            event = Event.CLUSTER_DEACTIVATED if turned_off else Event.CLUSTER_CHANGED
            details = {
                "before": {name: before[name] for name in changed},
                "after": {name: after[name] for name in changed},
            }
        audit_record(
            event=event,
            actor=actor,
            ip_address=ip_address,
            details={"cluster_id": cluster.pk, "cluster": cluster.name, **details},
        )
    return cluster


def cluster_delete(*, cluster: Cluster, actor=None, ip_address: str | None = None) -> None:
    """Delete a cluster that never had a job (Job.cluster protects the others), audited with
    every value it had."""
    with transaction.atomic():
        audit_record(
            event=Event.CLUSTER_DELETED,
            actor=actor,
            ip_address=ip_address,
            details={"cluster_id": cluster.pk, "cluster": cluster.name, "before": _values(cluster)},
        )
        cluster.delete()
