"""Finding and removing the copies that the legacy page's double-submit bug made.

The rule: jobs are duplicates when they have the same operator, action, cluster URL (trailing
slashes ignored) and set of customers, and were created within `window` seconds of the first
job of their group. The job kept is the one the server created (it has an HTTP status), else
the one whose summary is not the page's "Successfully processed N customer(s)", else the
earliest. A job in progress, or one that another job retries, is never removed.

Jobs are streamed ordered by (operator, action, cluster URL, created_at), so that candidates
are neighbours: only runs of neighbours close in time have their customers fetched.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Case, F, Func, Q, Value, When

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Job, JobCustomer
from jobs.services import count_jobs_removed, ended_job
from lib.chunks import batched

DEFAULT_WINDOW = 2.0
# The summary the legacy page gave the copy it created.
PAGE_SUMMARY_RE = re.compile(r"Successfully processed \d+ customer\(s\)")
# Neighbours whose customers are fetched at once: bounds both memory and query size.
_RESOLVE_BATCH = 2000
# Ids per lookup query, well under every database's limit on query parameters.
_QUERY_BATCH = 500


@dataclass(frozen=True)
class DuplicateGroup:
    """Jobs found to be one submission: the one kept, the copies to remove, the copies left."""

    kept_id: uuid.UUID
    kept_created_at: dt.datetime
    # (id, seconds after the kept job; negative when created before it)
    removed: tuple[tuple[uuid.UUID, float], ...]
    # (id, why it may not be removed)
    left: tuple[tuple[uuid.UUID, str], ...]
    username: str
    action_label: str
    cluster_url: str
    customer_count: int


@dataclass
class DedupeReport:
    apply: bool
    jobs_scanned: int = 0
    groups: int = 0
    duplicates: int = 0
    removed: int = 0
    left: int = 0
    changed: int = 0


@dataclass
class _Job:
    pk: uuid.UUID
    user_id: int
    action: int
    action_name: str
    cluster_url: str
    created_at: dt.datetime


class _RTrimSlash(Func):
    # RTRIM(text, characters) is the same on SQLite and PostgreSQL.
    function = "RTRIM"
    template = "%(function)s(%(expressions)s, '/')"


def job_find_duplicates(
    *,
    window: float = DEFAULT_WINDOW,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    user_id: int | None = None,
    include_keyed: bool = False,
    scanned: Callable[[int], None] | None = None,
) -> Iterator[DuplicateGroup]:
    """Yield each group of duplicate jobs (see the module docstring for the rule).

    Only jobs created in [since, until), of one operator when `user_id` is given, and without
    an idempotency key unless `include_keyed` are considered. `scanned` is called with the
    number of jobs read so far, now and then.
    """
    jobs = Job.objects.all()
    if not include_keyed:
        jobs = jobs.filter(Q(idempotency_key__isnull=True) | Q(idempotency_key=""))
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    if until is not None:
        jobs = jobs.filter(created_at__lt=until)
    if user_id is not None:
        jobs = jobs.filter(user_id=user_id)
    rows = (
        jobs.annotate(
            url_key=_RTrimSlash("cluster_url"),
            # Codes 1-5 are one action whatever the legacy spelling; code 0 is known by name.
            name_key=Case(When(action=0, then=F("legacy_action_name")), default=Value("")),
        )
        .order_by("user_id", "action", "name_key", "url_key", "created_at", "id")
        .values_list("id", "user_id", "action", "name_key", "url_key", "created_at")
        .iterator(chunk_size=5000)
    )
    window_delta = dt.timedelta(seconds=window)
    chain: list[_Job] = []
    pending: list[list[_Job]] = []
    pending_size = 0
    count = 0
    for row in rows:
        job = _Job(*row)
        count += 1
        if scanned and count % 10000 == 0:
            scanned(count)
        if (
            chain
            and _same_submission_key(chain[-1], job)
            and (job.created_at - chain[-1].created_at <= window_delta)
        ):
            chain.append(job)
            continue
        # A group's members lie within `window` of its first job, so every gap between
        # neighbours inside it is at most `window`: groups never span two chains.
        if len(chain) > 1:
            pending.append(chain)
            pending_size += len(chain)
        chain = [job]
        if pending_size >= _RESOLVE_BATCH:
            yield from _groups(pending, window_delta)
            pending, pending_size = [], 0
    if len(chain) > 1:
        pending.append(chain)
    if scanned:
        scanned(count)
    yield from _groups(pending, window_delta)


def _same_submission_key(a: _Job, b: _Job) -> bool:
    return (a.user_id, a.action, a.action_name, a.cluster_url) == (
        b.user_id,
        b.action,
        b.action_name,
        b.cluster_url,
    )


def _groups(chains: list[list[_Job]], window: dt.timedelta) -> Iterator[DuplicateGroup]:
    if not chains:
        return
    ids = [job.pk for chain in chains for job in chain]
    details: dict[uuid.UUID, list] = {}
    customers: dict[uuid.UUID, set[str]] = defaultdict(set)
    retried: set[uuid.UUID] = set()
    for batch in batched(ids, _QUERY_BATCH):
        for pk, *rest in Job.objects.filter(pk__in=batch).values_list(
            "pk", "http_status", "response_summary", "status", "legacy_action_name"
        ):
            details[pk] = rest
        for job_id, cid in JobCustomer.objects.filter(job_id__in=batch).values_list(
            "job_id", "cid"
        ):
            customers[job_id].add(cid)
        retried.update(Job.objects.filter(retry_of__in=batch).values_list("retry_of_id", flat=True))
    User = get_user_model()
    user_ids = sorted({chain[0].user_id for chain in chains})
    usernames: dict[int, str] = {}
    for batch in batched(user_ids, _QUERY_BATCH):
        usernames.update(User.objects.filter(pk__in=batch).values_list("pk", User.USERNAME_FIELD))
    for chain in chains:
        by_customers: dict[frozenset[str], list[_Job]] = defaultdict(list)
        for job in chain:
            by_customers[frozenset(customers[job.pk])].append(job)
        for cids, same in by_customers.items():
            group = [same[0]]
            for job in same[1:]:
                if job.created_at - group[0].created_at <= window:
                    group.append(job)
                    continue
                if len(group) > 1:
                    yield _group(group, details, retried, usernames, len(cids))
                group = [job]
            if len(group) > 1:
                yield _group(group, details, retried, usernames, len(cids))


def _group(
    jobs: list[_Job],
    details: dict[uuid.UUID, list],
    retried: set[uuid.UUID],
    usernames: dict[int, str],
    customer_count: int,
) -> DuplicateGroup:
    def preference(job: _Job) -> tuple:
        http_status, summary, _, _ = details[job.pk]
        page_made = bool(PAGE_SUMMARY_RE.fullmatch(summary.strip()))
        return (http_status is None, page_made, job.created_at, job.pk)

    kept = min(jobs, key=preference)
    removed, left = [], []
    for job in jobs:
        if job is kept:
            continue
        if details[job.pk][2] == Job.Status.IN_PROGRESS:
            left.append((job.pk, "in progress"))
        elif job.pk in retried:
            left.append((job.pk, "retried by another job"))
        else:
            removed.append((job.pk, (job.created_at - kept.created_at).total_seconds()))
    label_job = Job(action=kept.action, legacy_action_name=details[kept.pk][3])
    return DuplicateGroup(
        kept_id=kept.pk,
        kept_created_at=kept.created_at,
        removed=tuple(removed),
        left=tuple(left),
        username=usernames.get(kept.user_id, str(kept.user_id)),
        action_label=label_job.action_label,
        cluster_url=kept.cluster_url,
        customer_count=customer_count,
    )


def job_remove_duplicates(*, group: DuplicateGroup, window: float) -> list[uuid.UUID]:
    """Remove a group's copies in one transaction and return the ids removed.

    Each removed job gets a `job.deduplicated` audit entry holding the whole job (its fields
    and customers) and the kept id, in the same transaction, so nothing is beyond recovery;
    the removed jobs leave the per-hour counts in it too.
    A copy that changed since it was found (gone, now in progress, now retried) is left, and
    nothing is removed if the kept job is gone.
    """
    ids = [pk for pk, _ in group.removed]
    with transaction.atomic():
        if not Job.objects.filter(pk=group.kept_id).exists():
            return []
        locked = set(
            Job.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True)
        )
        retried = set(Job.objects.filter(retry_of__in=locked).values_list("retry_of_id", flat=True))
        jobs = list(
            Job.objects.filter(pk__in=locked - retried)
            .exclude(status=Job.Status.IN_PROGRESS)
            .select_related("user")
            .order_by("created_at")
        )
        customers: dict[uuid.UUID, list[dict]] = defaultdict(list)
        for row in (
            JobCustomer.objects.filter(job__in=jobs)
            .order_by("pk")
            .values("job_id", "cid", "outcome", "message")
        ):
            customers[row.pop("job_id")].append(row)
        for job in jobs:
            fields = {f.attname: getattr(job, f.attname) for f in Job._meta.concrete_fields}
            audit_record(
                event=AuditEntry.Event.JOB_DEDUPLICATED,
                job_id=job.pk,
                details=_json_safe(
                    {
                        "kept_job_id": group.kept_id,
                        "rule": {"window_seconds": window},
                        "job": {**fields, "username": job.user.get_username()},
                        "customers": customers[job.pk],
                    }
                ),
            )
        removed = [job.pk for job in jobs]
        count_jobs_removed(ended_job(job) for job in jobs)
        Job.objects.filter(pk__in=removed).delete()
    return removed


def _json_safe(value: dict) -> dict:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def job_dedupe(
    *,
    window: float = DEFAULT_WINDOW,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    user_id: int | None = None,
    include_keyed: bool = False,
    apply: bool = False,
    on_group: Callable[[DuplicateGroup, list[uuid.UUID]], None] | None = None,
    scanned: Callable[[int], None] | None = None,
) -> DedupeReport:
    """Find duplicate jobs and, with `apply`, remove the copies (one transaction per group).

    `on_group` is called for each group with the ids removed (empty without `apply`).
    """
    report = DedupeReport(apply=apply)

    def count_scanned(count: int) -> None:
        report.jobs_scanned = count
        if scanned:
            scanned(count)

    for group in job_find_duplicates(
        window=window,
        since=since,
        until=until,
        user_id=user_id,
        include_keyed=include_keyed,
        scanned=count_scanned,
    ):
        report.left += len(group.left)
        if not group.removed:
            if on_group:
                on_group(group, [])
            continue
        report.groups += 1
        report.duplicates += len(group.removed)
        removed = job_remove_duplicates(group=group, window=window) if apply else []
        report.removed += len(removed)
        if apply:
            report.changed += len(group.removed) - len(removed)
        if on_group:
            on_group(group, removed)
    return report
