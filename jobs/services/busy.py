"""Busy customers: those with a job in progress on a cluster, which a new job may not hold
too. The rule is the conflict guard's (InFlightCustomer, unique per cluster and customer):
a review reads it without writing anything, and a submit is refused by it when it inserts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from jobs.models import Cluster, InFlightCustomer, Job
from jobs.services.input import _name_some
from jobs.services.limits import CHUNK
from lib.chunks import batched


class CustomerConflict(ValidationError):
    """Some customers already have a job in progress on the cluster."""

    def __init__(self, message: str, *, job_ids: list[uuid.UUID]) -> None:
        super().__init__({"cids": [message]})
        self.job_ids = job_ids


@dataclass(frozen=True)
class BusyCustomer:
    """A customer with a job in progress on the cluster; `job_id` is None when the job is
    another operator's that the user may not see."""

    cid: str
    job_id: uuid.UUID | None


def _holders(cluster: Cluster, cids: list[str]) -> dict[str, uuid.UUID]:
    """Each of `cids` that a job in progress on `cluster` holds, and that job."""
    held: dict[str, uuid.UUID] = {}
    for part in batched(cids, CHUNK):
        rows = InFlightCustomer.objects.filter(cluster=cluster, cid__in=part)
        held.update(rows.values_list("cid", "job_id"))
    return held


def _visible(user, job_ids) -> set[uuid.UUID]:
    return set(Job.objects.filter(pk__in=job_ids).visible_to(user).values_list("pk", flat=True))


def busy_customers(*, user, cluster: Cluster, cids: list[str]) -> list[BusyCustomer]:
    """Those of `cids` (in their order) that have a job in progress on `cluster` now, each
    with its job when `user` may see it. Reads only: whether a submit may hold them is still
    decided by its insert, as a job may start or end in between."""
    held = _holders(cluster, cids)
    visible = _visible(user, set(held.values()))
    return [
        BusyCustomer(cid=cid, job_id=held[cid] if held[cid] in visible else None)
        for cid in cids
        if cid in held
    ]


def _conflicting_job_ids(cluster: Cluster, cids: list[str]) -> list[uuid.UUID]:
    return sorted(set(_holders(cluster, cids).values()))


def _conflict(user, cluster: Cluster, job_ids: list[uuid.UUID]) -> CustomerConflict:
    """The refusal for customers with jobs in progress. It names only the jobs `user` may
    see; another operator's job is "a job of another operator", its id kept from them."""
    visible = _visible(user, job_ids)
    shown = [job_id for job_id in job_ids if job_id in visible]
    hidden = len(job_ids) - len(shown)
    parts = [f"job(s) {_name_some([str(job_id) for job_id in shown])}"] if shown else []
    if hidden:
        parts.append(
            "a job of another operator" if hidden == 1 else f"{hidden} jobs of other operators"
        )
    return CustomerConflict(
        f"Some customers already have a job in progress on cluster {cluster.name}: "
        f"{' and '.join(parts)}. Wait for them to end.",
        job_ids=shown,
    )
