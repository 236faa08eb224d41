"""Every change to a job's state goes through this module.

A job's life: `job_submit` records it (IN_PROGRESS, not started) and enqueues its task in the
same transaction; `job_run`, the task's body, claims it (started) together with one of its
cluster's `max_concurrent_calls` call slots, or, when all are taken, puts it back in the queue
to wait its turn (the end of a call to the cluster wakes the oldest waiting job); it calls the
cluster outside any transaction, and records the outcome (SUCCESS or FAILED);
`job_reap_stale` ends what a dead process left behind (UNKNOWN) or what no worker picked up
(FAILED). Each transition is a compare-and-set on the status, written with its audit entry in
one transaction, so a terminal state never changes and the cluster is called at most once per
job.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEntry
from audit.services import audit_record
from jobs import upstream
from jobs.lanes import lane_release, lane_take, releasing_lane
from jobs.models import Cluster, InFlightCall, InFlightCustomer, Job, JobCustomer, JobToken
from jobs.signals import job_ended
from jobs.tokens import InvalidToken, token_decrypt, token_encrypt, token_fingerprint
from lib.chunks import batched
from lib.outage import ride_out

logger = logging.getLogger(__name__)

Event = AuditEntry.Event
Status = Job.Status

MAX_ERROR_LENGTH = 1000
# A job whose cluster is at its limit of calls is woken when a call to the cluster ends; it
# looks again after this long anyway (a wake-up lost to a race costs no more than this).
WAIT_RECHECK = timedelta(seconds=15)
# How many times a claim looks for a free call slot that others keep taking first.
SLOT_ROUNDS = 10
# How many of the oldest waiting jobs a wake-up considers, skipping those already woken.
WAKE_LOOKAHEAD = 20
MAX_TOKEN_LENGTH = 4096
MAX_KEY_LENGTH = 100
ERRORS_NAMED = 10
# Rows per INSERT and per IN (...) list: within SQLite's and PostgreSQL's parameter limits.
CHUNK = 2000

INTERRUPTED = (
    "Interrupted: no result was recorded. The cluster may have applied the action; "
    "check before retrying."
)
NOT_STARTED = "Not started: no worker picked the job up in time"
KEY_CHANGED_MESSAGE = (
    "The operator's token could not be decrypted (TMS_TOKEN_KEY or SECRET_KEY changed "
    "since the job was submitted); the cluster was not called."
)


class CustomerConflict(ValidationError):
    """Some customers already have a job in progress on the cluster."""

    def __init__(self, message: str, *, job_ids: list[uuid.UUID]) -> None:
        super().__init__({"cids": [message]})
        self.job_ids = job_ids


class Submitted(list):
    """The jobs a submit or retry recorded: a list, with `replayed` true when its idempotency
    key had already made them (nothing was written this time)."""

    # Rebuilt like any list from its items where Django resolves a value (`job__in=jobs`):
    # hence the defaults.
    def __init__(self, jobs: Iterable[Job] = (), *, replayed: bool = False) -> None:
        super().__init__(jobs)
        self.replayed = replayed


def _name_some(items: list[str]) -> str:
    shown = ", ".join(items[:ERRORS_NAMED])
    return shown + (f" and {len(items) - ERRORS_NAMED} more" if len(items) > ERRORS_NAMED else "")


def parse_action(value: int | str) -> int:
    """An action code from a code (1-5) or a name in any spelling (see JobAction.from_name)."""
    text = str(value).strip()
    if text.isdigit() and int(text) in Job.Action.values:
        return int(text)
    if (action := Job.Action.from_name(text)) is not None:
        return int(action)
    names = ", ".join(Job.Action.labels)
    raise ValidationError({"action": [f"Unknown action {text!r}: choose one of {names}."]})


def parse_cids(cids: str | Sequence[str], positions: Sequence[str] | None = None) -> list[str]:
    """Customer IDs, split on commas, white space and new lines, blanks and repeats dropped.

    Each must match TMS_CID_PATTERN. `positions` names where each item of a sequence stands
    (for example "line 4" of a CSV file); by default "item N".
    """
    if isinstance(cids, str):
        items = [c for c in re.split(r"[,\s]+", cids) if c]
        positions = None
    else:
        items = [c.strip() for c in cids]
    labels = positions or [f"item {n}" for n in range(1, len(items) + 1)]
    pattern = re.compile(settings.TMS_CID_PATTERN)
    seen: dict[str, None] = {}
    bad = []
    for value, label in zip(items, labels, strict=True):
        if not value:
            continue
        if not pattern.fullmatch(value):
            bad.append(f"{value[:70]!r} ({label})")
        seen.setdefault(value, None)
    if bad:
        raise ValidationError({"cids": [f"{len(bad)} invalid customer ID(s): {_name_some(bad)}."]})
    if not seen:
        raise ValidationError({"cids": ["Give at least one customer ID."]})
    if len(seen) > settings.TMS_MAX_CIDS:
        raise ValidationError(
            {
                "cids": [
                    f"{len(seen)} customer IDs; the most one submission may hold is "
                    f"{settings.TMS_MAX_CIDS}."
                ]
            }
        )
    return list(seen)


def _token_errors(token: str) -> list[str]:
    # Never repeat the token in a message.
    if not token:
        return ["Give the cluster API token."]
    if len(token) > MAX_TOKEN_LENGTH:
        return [f"The token is longer than {MAX_TOKEN_LENGTH} characters."]
    if any(ord(c) < 32 or ord(c) == 127 for c in token):
        return ["The token contains control characters (a pasted line break?)."]
    # It travels in an HTTP header, which takes visible ASCII only (see jobs.upstream).
    if not all(33 <= ord(c) <= 126 for c in token):
        return ["The token may hold only visible ASCII characters, without spaces."]
    return []


def _active_cluster(cluster: Cluster | str) -> Cluster:
    lookup = {"pk": cluster.pk} if isinstance(cluster, Cluster) else {"name": cluster}
    found = Cluster.objects.filter(is_active=True, **lookup).first()
    if found is None:
        raise ValidationError({"cluster": [f"No active cluster {cluster!s}."]})
    return found


def _digest(action: int, cluster: Cluster, cids: list[str]) -> str:
    text = f"{action}\n{cluster.pk}\n" + "\n".join(cids)
    return hashlib.sha256(text.encode()).hexdigest()


def _validated(*, user, action, cluster, cids, cid_positions, token, idempotency_key):
    """Every input checked before anything is written; all problems reported together."""
    if not user.has_perm("jobs.run_set_action"):
        raise PermissionDenied("You may not run Set Actions.")
    errors: dict[str, list[str]] = {}
    values = {}
    for name, parse in (
        ("action", lambda: parse_action(action)),
        ("cluster", lambda: _active_cluster(cluster)),
        ("cids", lambda: parse_cids(cids, cid_positions)),
    ):
        try:
            values[name] = parse()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if token_errors := _token_errors(token):
        errors["token"] = token_errors
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
        errors["idempotency_key"] = [f"An idempotency key has 1 to {MAX_KEY_LENGTH} characters."]
    if errors:
        raise ValidationError(errors)
    return values["action"], values["cluster"], values["cids"]


def _replay(user, key: str, digest: str) -> list[Job] | None:
    """The jobs an earlier submit with this key made, or None; refuses other content."""
    first = Job.objects.filter(user=user, idempotency_key=key).first()
    if first is None:
        return None
    if first.submission_digest != digest:
        raise ValidationError(
            {
                "idempotency_key": [
                    f"This idempotency key was used for another submission (job {first.pk}) "
                    "with a different action, cluster or customers."
                ]
            }
        )
    if first.batch_id is None:
        return [first]
    return list(Job.objects.filter(batch_id=first.batch_id).order_by("batch_seq"))


def _conflicting_job_ids(cluster: Cluster, cids: list[str]) -> list[uuid.UUID]:
    job_ids: set[uuid.UUID] = set()
    for part in batched(cids, CHUNK):
        job_ids.update(
            InFlightCustomer.objects.filter(cluster=cluster, cid__in=part).values_list(
                "job_id", flat=True
            )
        )
    return sorted(job_ids)


def _conflict(user, cluster: Cluster, job_ids: list[uuid.UUID]) -> CustomerConflict:
    """The refusal for customers with jobs in progress. It names only the jobs `user` may
    see; another operator's job is "a job of another operator", its id kept from them."""
    visible = set(Job.objects.filter(pk__in=job_ids).visible_to(user).values_list("pk", flat=True))
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


def _enqueue(job_ids: list[uuid.UUID], *, run_after: datetime | None = None) -> list[str]:
    """Queue each job's task; returns the tasks' ids."""
    from jobs.tasks import run_job

    task = run_job.using(run_after=run_after) if run_after else run_job
    return [task.enqueue(str(job_id)).id for job_id in job_ids]


def _chunks(cids: list[str], cluster: Cluster) -> list[list[str]]:
    """The customers of each job a submission to `cluster` is split into."""
    return list(batched(cids, cluster.max_cids_per_request))


def _insert_cids(model, cids: list[str], **same) -> None:
    """Insert one row of `model` per customer ID, in the IDs' order, each with the columns
    `same` (foreign keys by id) alike: one statement, the IDs sent as one JSON array that the
    database expands (SQLite's json_each, PostgreSQL's json_array_elements_text).

    A 100,000-customer submit inserts 200,000 rows; as model instances through bulk_create
    they cost about 25 s of CPU under a profiler, nearly all of it building the instances
    and their SQL, and held the write transaction (on SQLite, every other writer) that long.
    A unique constraint broken here raises IntegrityError, as bulk_create would.
    """
    fields = [model._meta.get_field(name) for name in same]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = [field.get_db_prep_value(same[field.name], connection) for field in fields]
    placeholders = ", ".join(["%s"] * len(values))
    if connection.vendor == "postgresql":
        ids = "json_array_elements_text(%s::json) WITH ORDINALITY AS ids(value, key)"
    else:
        ids = "json_each(%s) AS ids"
    # Only names from the models and placeholders are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}, cid) "  # noqa: S608
        f"SELECT {placeholders}, ids.value FROM {ids} ORDER BY ids.key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, json.dumps(cids)])


def _create(*, user, action, cluster, parts, token, key, digest, ip_address):
    """Record one job per part, each part being (its customers, the job it retries or None),
    sharing a batch id when there are several, and queue their tasks."""
    batch_id = uuid.uuid4() if len(parts) > 1 else None
    now = timezone.now()
    fingerprint = token_fingerprint(token)
    action_name = Job.Action(action).label
    jobs = []
    for seq, (chunk, retry_of) in enumerate(parts, start=1):
        job_id = uuid.uuid4()
        jobs.append(
            Job(
                id=job_id,
                user=user,
                action=action,
                cluster=cluster,
                cluster_url=cluster.base_url,
                action_path=cluster.action_path,
                timeout_seconds=cluster.timeout_seconds,
                verify_tls=cluster.verify_tls,
                batch_id=batch_id,
                batch_seq=seq if batch_id else None,
                request_payload={
                    "job_id": str(job_id),
                    "action": action,
                    "action_name": action_name,
                    "cids": list(chunk),
                },
                customer_count=len(chunk),
                # The key and digest live on the first job; the batch id finds the rest.
                idempotency_key=key if seq == 1 else None,
                submission_digest=digest if seq == 1 else "",
                token_fingerprint=fingerprint,
                retry_of=retry_of,
                created_at=now,
            )
        )
    with transaction.atomic():
        Job.objects.bulk_create(jobs)
        # Encrypted once, outside the comprehension, whose frame would hold the token too.
        ciphertext = token_encrypt(token)
        JobToken.objects.bulk_create([JobToken(job=job, ciphertext=ciphertext) for job in jobs])
        for job, (chunk, _retry_of) in zip(jobs, parts, strict=True):
            _insert_cids(JobCustomer, chunk, job=job.pk)
            # The conflict guard: unique (cluster, cid) among jobs in progress.
            _insert_cids(InFlightCustomer, chunk, cluster=cluster.pk, job=job.pk)
        for job in jobs:
            audit_record(
                event=Event.SET_ACTION_REQUESTED,
                actor=user,
                job_id=job.pk,
                ip_address=ip_address,
                details={
                    "action": action_name,
                    "cluster": cluster.name,
                    "customers": job.customer_count,
                    "batch_id": str(batch_id) if batch_id else None,
                    "batch_seq": job.batch_seq,
                    "retry_of": str(job.retry_of_id) if job.retry_of_id else None,
                    "token_fingerprint": fingerprint,
                },
            )
        retried: dict[uuid.UUID, list[str]] = {}
        for job in jobs:
            if job.retry_of_id:
                retried.setdefault(job.retry_of_id, []).append(str(job.pk))
        for old_id, new_jobs in retried.items():
            audit_record(
                event=Event.JOB_RETRIED,
                actor=user,
                job_id=old_id,
                ip_address=ip_address,
                details={"new_jobs": new_jobs},
            )
        # The queue is a table of the same database: the tasks are committed with their jobs
        # or not at all, so no process can die between the two and leave a job no worker
        # will ever run.
        _enqueue([job.pk for job in jobs])
    for job in jobs:
        logger.info(
            "job %s submitted: %s on %s, %d customer(s)",
            job.pk,
            action_name,
            cluster.name,
            job.customer_count,
            extra={"job_id": str(job.pk)},
        )
    return jobs


@dataclass(frozen=True)
class SubmitPreview:
    """What `job_submit` would record: the action, the cluster, the customers (blanks and
    repeats dropped) and how many jobs they are split into."""

    action: int
    cluster: Cluster
    cids: list[str]
    parts: int


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def job_submit_preview(
    *,
    user,
    action: int | str,
    cluster: Cluster | str,
    cids: str | Sequence[str],
    token: str,
    idempotency_key: str | None = None,
    cid_positions: Sequence[str] | None = None,
) -> SubmitPreview:
    """Check a Set Action as `job_submit` checks it, and say what it would record; writes
    nothing. Raises ValidationError (by field) for bad input. Whether customers are busy is
    decided by `job_submit` alone, when it records the jobs.
    """
    action, cluster, cid_list = _validated(
        user=user,
        action=action,
        cluster=cluster,
        cids=cids,
        cid_positions=cid_positions,
        token=token,
        idempotency_key=idempotency_key,
    )
    return SubmitPreview(
        action=action, cluster=cluster, cids=cid_list, parts=len(_chunks(cid_list, cluster))
    )


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def job_submit(
    *,
    user,
    action: int | str,
    cluster: Cluster | str,
    cids: str | Sequence[str],
    token: str,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
    cid_positions: Sequence[str] | None = None,
    retry_of: Job | None = None,
) -> Submitted:
    """Record a Set Action as one job (or one per chunk of the cluster's
    `max_cids_per_request`, sharing a batch id) and enqueue each job's task in the same transaction.

    Raises ValidationError (by field) for bad input and CustomerConflict when a customer has
    a job in progress on the cluster; either way nothing is written. The same user and
    idempotency key again returns the first submit's jobs and writes nothing; the same key
    with other content is refused. Safe under concurrent submits: the database's unique
    constraints decide, not a check made before the insert.
    """
    action, cluster, cid_list = _validated(
        user=user,
        action=action,
        cluster=cluster,
        cids=cids,
        cid_positions=cid_positions,
        token=token,
        idempotency_key=idempotency_key,
    )
    parts = [(chunk, retry_of) for chunk in _chunks(cid_list, cluster)]
    return _record(
        user=user,
        action=action,
        cluster=cluster,
        parts=parts,
        token=token,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


def _record(*, user, action, cluster, parts, token, idempotency_key, ip_address) -> Submitted:
    """`_create` the parts, or replay the jobs the same key made; conflicts raised."""
    cid_list = [cid for cids, _retry_of in parts for cid in cids]
    digest = _digest(action, cluster, cid_list)
    for attempt in range(3):
        # A key used before makes the insert fail on the unique (user, idempotency_key): the
        # replay is looked for then, not before every submit.
        if (
            attempt
            and idempotency_key
            and (jobs := _replay(user, idempotency_key, digest)) is not None
        ):
            return Submitted(jobs, replayed=True)
        try:
            created = _create(
                user=user,
                action=action,
                cluster=cluster,
                parts=parts,
                token=token,
                key=idempotency_key,
                digest=digest,
                ip_address=ip_address,
            )
            return Submitted(created, replayed=False)
        except IntegrityError:
            # Another submit won a race: the same key (replayed above on the next attempt)
            # or the same customers (named below). If neither is there any more, the other
            # job ended in between, and trying again is right.
            if (
                idempotency_key
                and Job.objects.filter(user=user, idempotency_key=idempotency_key).exists()
            ):
                continue
            if conflicts := _conflicting_job_ids(cluster, cid_list):
                raise _conflict(user, cluster, conflicts) from None
    raise CustomerConflict(
        "The customers' jobs kept changing while this was submitted; submit again.", job_ids=[]
    )


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def job_retry(
    *,
    job: Job,
    user,
    token: str,
    confirm_unknown: bool = False,
    confirm_again: bool = False,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> Submitted:
    """Submit a FAILED or UNKNOWN job again as new job(s) with `retry_of` set.

    Same action and cluster; the customers that failed when the cluster reported per-customer
    outcomes, otherwise all of them. A new token is required. An UNKNOWN job may already have
    been applied, so it needs `confirm_unknown`; a job already retried would run its customers
    once more, so it needs `confirm_again` (the same retry form sent twice is a replay, not a
    second retry). The old job is never changed.
    """
    replay = _key_used(user, idempotency_key)
    _check_retry(job, user, confirm_unknown=confirm_unknown, confirm_again=confirm_again or replay)
    return job_submit(
        user=user,
        action=job.action,
        cluster=job.cluster,
        cids=_retry_cids(job),
        token=token,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
        retry_of=job,
    )


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def batch_retry(
    *,
    batch_id: uuid.UUID,
    user,
    token: str,
    confirm_unknown: bool = False,
    confirm_again: bool = False,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> Submitted:
    """Retry every FAILED and UNKNOWN part of a batch at once, as one new batch (or one job):
    each part's customers as `job_retry` would take them, in jobs of their own whose
    `retry_of` is that part. The same confirmations as `job_retry`, for any part that needs
    them. Raises ValidationError when no part can be retried.
    """
    parts = list(
        Job.objects.visible_to(user)
        .filter(batch_id=batch_id, status__in=[Status.FAILED, Status.UNKNOWN])
        .select_related("cluster")
        .order_by("batch_seq")
    )
    if not parts:
        raise ValidationError("No part of this batch failed or is unknown: nothing to retry.")
    replay = _key_used(user, idempotency_key)
    for part in parts:
        _check_retry(
            part, user, confirm_unknown=confirm_unknown, confirm_again=confirm_again or replay
        )
    plan = [(part, _retry_cids(part)) for part in parts]
    action, cluster, _cids = _validated(
        user=user,
        action=parts[0].action,
        cluster=parts[0].cluster,
        cids=[cid for _part, cids in plan for cid in cids],
        cid_positions=None,
        token=token,
        idempotency_key=idempotency_key,
    )
    return _record(
        user=user,
        action=action,
        cluster=cluster,
        parts=[(chunk, part) for part, cids in plan for chunk in _chunks(cids, cluster)],
        token=token,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


def _key_used(user, idempotency_key: str | None) -> bool:
    """Whether this key already made jobs: sending it again is a replay, not a new retry."""
    return bool(idempotency_key) and (
        Job.objects.filter(user=user, idempotency_key=idempotency_key).exists()
    )


def _check_retry(job: Job, user, *, confirm_unknown: bool, confirm_again: bool) -> None:
    """Refuse to retry `job` unless `user` may, it FAILED or is UNKNOWN, and what needs a
    confirmation (an UNKNOWN outcome, an earlier retry) has it."""
    if job.user_id != user.pk and not user.has_perm("jobs.view_all_jobs"):
        raise PermissionDenied("You may not retry another operator's job.")
    if job.status not in (Status.FAILED, Status.UNKNOWN):
        raise ValidationError(
            f"Only a FAILED or UNKNOWN job can be retried; this one is {job.status}."
        )
    if job.status == Status.UNKNOWN and not confirm_unknown:
        raise ValidationError(
            {
                "confirm_unknown": [
                    f"The cluster may already have applied job {job.pk}'s action: confirm that "
                    "you checked before retrying it."
                ]
            }
        )
    if job.cluster is None:
        raise ValidationError("This job has no cluster (it was imported); it cannot be retried.")
    earlier = list(job.retries.order_by("created_at").values_list("pk", "status"))
    if earlier and not confirm_again:
        shown = ", ".join(f"{pk} ({status})" for pk, status in earlier[:ERRORS_NAMED])
        raise ValidationError(
            {
                "confirm_again": [
                    f"Job {job.pk} was already retried as {shown}: confirm to run its "
                    "customers again."
                ]
            }
        )


def _retry_cids(job: Job) -> list[str]:
    """The customers that failed, when the cluster reported per customer; otherwise all."""
    customers = job.customers.order_by("pk")
    failed = list(
        customers.filter(outcome=JobCustomer.Outcome.FAILED).values_list("cid", flat=True)
    )
    return failed or list(customers.values_list("cid", flat=True))


def _end(
    job_id: uuid.UUID,
    *,
    condition: Q,
    status: str,
    event: str,
    details: dict,
    http_status: int | None = None,
    error_message: str = "",
    response_summary: str = "",
    outcomes: Sequence[upstream.CustomerResult] = (),
    customers: Sequence[tuple[int, str]] = (),
    job: Job | None = None,
    actor=None,
    ip_address: str | None = None,
) -> bool:
    """Move an IN_PROGRESS job matching `condition` to `status`, with its audit entry by
    `actor`: None, the system (a worker or the reaper), unless a user did it.

    `outcomes` are recorded on the job's `customers` (their (pk, cid) rows). `job`, when the
    caller has it, is the job as it read it with its cluster (what the job_ended receivers use:
    the cluster's name, the action, started_at); otherwise it is read here.

    Releases the job's customers and deletes its token in the same transaction. Returns
    False, changing nothing, when the job is no longer IN_PROGRESS or no longer matches.
    """
    now = timezone.now()
    with transaction.atomic():
        ended = Job.objects.filter(condition, pk=job_id, status=Status.IN_PROGRESS).update(
            status=status,
            http_status=http_status,
            error_message=error_message[:MAX_ERROR_LENGTH],
            response_summary=response_summary,
            finished_at=now,
            updated_at=now,
        )
        if not ended:
            return False
        if outcomes:
            _record_outcomes(outcomes, customers)
        JobToken.objects.filter(job_id=job_id).delete()
        InFlightCustomer.objects.filter(job_id=job_id).delete()
        released, _ = InFlightCall.objects.filter(job_id=job_id).delete()
        if job is None:
            job = (
                Job.objects.select_related("cluster")
                .only(
                    "cluster__name",
                    "action",
                    "legacy_action_name",
                    "started_at",
                )
                .get(pk=job_id)
            )
        audit_record(
            event=event,
            actor=actor,
            job_id=job_id,
            ip_address=ip_address,
            details=details,
        )
        woke = bool(released) and _wake_next_waiting(job.cluster_id, now)
        job_ended.send(
            sender=Job,
            job=job,
            status=status,
            finished_at=now,
            reason=details.get("reason"),
            woke_waiting=woke,
        )
    logger.info(
        "job %s ended %s: %s",
        job_id,
        status,
        error_message or response_summary,
        extra={"job_id": str(job_id)},
    )
    return True


def _record_outcomes(
    outcomes: Sequence[upstream.CustomerResult], customers: Sequence[tuple[int, str]]
) -> None:
    """Record each customer's outcome on the job's `customers`, its (pk, cid) rows."""
    by_cid = {result.cid: result for result in outcomes}
    # Results for customers the job does not hold are ignored.
    rows = [
        JobCustomer(
            pk=pk,
            outcome=(
                JobCustomer.Outcome.SUCCESS if by_cid[cid].success else JobCustomer.Outcome.FAILED
            ),
            message=by_cid[cid].message[:MAX_ERROR_LENGTH],
        )
        for pk, cid in customers
        if cid in by_cid
    ]
    JobCustomer.objects.bulk_update(rows, ["outcome", "message"], batch_size=CHUNK)


class Claim(enum.Enum):
    STARTED = "started"
    WAITING = "waiting for the cluster"
    NOT_RUNNABLE = "already started or ended"


def _claim(job_id: uuid.UUID, started: datetime) -> tuple[Claim, Job | None]:
    """Start the job if it is not started and its cluster has a free call slot, in one
    transaction; when every slot is taken, put it back in the queue to try again shortly.

    Returns, with the claim, the job once started: as submitted, with its cluster and its
    token's `ciphertext` (None when the token is gone), read in one query."""
    with transaction.atomic():
        # On PostgreSQL this locks the job's row until the transaction ends, so one delivery
        # of a task at a time gets past it.
        claimed = Job.objects.filter(
            pk=job_id, status=Status.IN_PROGRESS, started_at__isnull=True
        ).update(started_at=started, waiting_since=None, updated_at=started)
        if not claimed:
            logger.warning(
                "job %s not run: it was already started or has ended",
                job_id,
                extra={"job_id": str(job_id)},
            )
            return Claim.NOT_RUNNABLE, None
        job = _started_job(job_id).get()
        if job.cluster_id is None:
            return Claim.STARTED, job
        # This worker process's share of its threads for the cluster (jobs.lanes), then one of
        # the cluster's call slots, whichever hosts ask.
        if lane_take(job.cluster_id):
            if _take_call_slot(job_id, job.cluster_id, job.cluster.max_concurrent_calls, started):
                return Claim.STARTED, job
            lane_release()
        # Every slot is taken, or this process's share of them: undo the claim, which nobody
        # has seen, and wait, to be woken when a call to the cluster ends (or to look again
        # after WAIT_RECHECK anyway).
        [task_id] = _enqueue([job_id], run_after=started + WAIT_RECHECK)
        Job.objects.filter(pk=job_id).update(
            started_at=None, waiting_since=started, waiting_task_id=task_id
        )
    logger.info("job %s waiting for its cluster", job_id, extra={"job_id": str(job_id)})
    return Claim.WAITING, None


def _started_job(job_id: uuid.UUID):
    """The job, as a claim returns it: with its cluster and its token's `ciphertext`."""
    return (
        Job.objects.select_related("cluster")
        .annotate(
            ciphertext=Subquery(JobToken.objects.filter(job_id=OuterRef("pk")).values("ciphertext"))
        )
        .filter(pk=job_id)
    )


def _claim_riding_out(job_id: uuid.UUID, started: datetime) -> tuple[Claim, Job | None]:
    """`_claim`, tried again through a database outage (lib.outage). A claim the database
    committed although its answer was lost with the connection is known on the next attempt
    by the start it wrote: the job is this delivery's, its call slot taken."""
    attempts = 0

    def claim() -> tuple[Claim, Job | None]:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            mine = _started_job(job_id).filter(status=Status.IN_PROGRESS, started_at=started)
            if job := mine.first():
                return Claim.STARTED, job
        return _claim(job_id, started)

    return ride_out(claim, doing=f"claiming job {job_id}")


def _take_call_slot(job_id: uuid.UUID, cluster_id: int, limit: int, now: datetime) -> bool:
    """Take a free slot of the cluster's `limit` (its `max_concurrent_calls`); False when none
    is free.

    Two workers may both see a slot free; the unique (cluster, slot) lets one have it, and the
    other tries the next. When every slot that looked free was taken meanwhile, it looks
    again: a slot released in the meantime is not missed.
    """
    for _ in range(SLOT_ROUNDS):
        taken = set(
            InFlightCall.objects.filter(cluster_id=cluster_id).values_list("slot", flat=True)
        )
        free = [slot for slot in range(limit) if slot not in taken]
        if not free:
            return False
        for slot in free:
            try:
                with transaction.atomic():
                    InFlightCall.objects.create(
                        cluster_id=cluster_id, slot=slot, job_id=job_id, started_at=now
                    )
            except IntegrityError:
                continue
            return True
    return False


def _wake_next_waiting(cluster_id: int, now: datetime) -> bool:
    """A call to the cluster ended: bring forward the task of its oldest waiting job not
    already woken, so that a worker tries it next; True when it woke one. Taking the task id
    off the job is the compare-and-set that keeps two ending calls from waking the same job."""
    waiting = (
        Job.objects.filter(cluster_id=cluster_id, status=Status.IN_PROGRESS)
        .filter(waiting_since__isnull=False, waiting_task_id__isnull=False)
        .order_by("created_at")
        .values_list("pk", "waiting_task_id")
    )
    for job_id, task_id in waiting[:WAKE_LOOKAHEAD]:
        if not Job.objects.filter(pk=job_id, waiting_task_id=task_id).update(waiting_task_id=None):
            continue
        if DBTaskResult.objects.filter(pk=task_id, status=TaskResultStatus.READY).update(
            run_after=now
        ):
            return True
    return False


# Error reports hide every local of this call and of what it calls: the token is one.
@releasing_lane
@sensitive_variables()
def job_run(*, job_id: uuid.UUID) -> bool:
    """Run a job: claim it, call its cluster once, record the outcome. The task's body.

    Returns False without calling the cluster when the claim fails: the job was already
    started (a second delivery of the task), has ended, or was reaped; or its cluster has
    `max_concurrent_calls` calls in flight, or this worker process has its share of calls to
    it (jobs.lanes), and the job was put back in the queue.
    """
    started = timezone.now()
    claim, job = _claim_riding_out(job_id, started)
    if claim is not Claim.STARTED:
        return False
    logger.info("job %s started on %s", job_id, job.cluster_url, extra={"job_id": str(job_id)})
    try:
        if job.ciphertext is None:
            raise JobToken.DoesNotExist
        token = token_decrypt(job.ciphertext)
    except (JobToken.DoesNotExist, InvalidToken):
        lane_release()
        ride_out(
            lambda: _end(
                job_id,
                condition=Q(started_at=started),
                status=Status.FAILED,
                event=Event.JOB_FAILED,
                error_message=KEY_CHANGED_MESSAGE,
                details={"reason": "token_unreadable"},
                job=job,
            ),
            doing=f"ending job {job_id}",
        )
        return True

    customers = list(job.customers.order_by("pk").values_list("pk", "cid"))
    cids = [cid for _, cid in customers]
    # No transaction is open here: the claim is committed, and the result is recorded in a
    # new short transaction below.
    result = upstream.call_set_action(
        # What the job was submitted with, not what its cluster says now.
        base_url=job.cluster_url,
        action_path=job.action_path,
        job_id=str(job_id),
        action=job.action,
        action_name=job.action_label,
        cids=cids,
        token=token,
        timeout_seconds=job.timeout_seconds,
        verify_tls=job.verify_tls,
    )
    # Given back before the end is recorded, which wakes a job waiting for the cluster: the
    # lane must be free when a worker takes it up.
    lane_release()
    status = Status.SUCCESS if result.success else Status.FAILED
    details = {
        "http_status": result.http_status,
        "duration_ms": result.duration_ms,
        "error": result.error_message[:MAX_ERROR_LENGTH],
    }
    attempts = 0

    def record() -> bool:
        nonlocal attempts
        attempts += 1
        ended = _end(
            job_id,
            condition=Q(started_at=started),
            status=status,
            event=Event.JOB_SUCCEEDED if result.success else Event.JOB_FAILED,
            details=details,
            http_status=result.http_status,
            error_message=result.error_message,
            response_summary=result.summary,
            outcomes=result.customer_results,
            customers=customers,
            job=job,
        )
        # An earlier attempt the database committed, its answer lost with the connection.
        return ended or (
            attempts > 1
            and Job.objects.filter(
                pk=job_id, started_at=started, status=status, http_status=result.http_status
            ).exists()
        )

    # The cluster has answered: its answer is recorded, on a new connection if the one held
    # through the call was lost, however long the database takes to come back.
    recorded = ride_out(record, doing=f"recording job {job_id}'s result")
    if not recorded:
        # The reaper ended the job while the call was out; its state stands, and the late
        # result goes into the audit log so nothing the cluster said is lost.
        ride_out(
            lambda: audit_record(
                event=Event.JOB_LATE_RESULT,
                job_id=job_id,
                details={**details, "outcome": status, "summary": result.summary},
            ),
            doing=f"recording job {job_id}'s late result",
        )
        logger.warning(
            "job %s: result %s arrived after the job was reaped",
            job_id,
            status,
            extra={"job_id": str(job_id)},
        )
    return True


@dataclass
class ReapReport:
    unknown: list[uuid.UUID] = field(default_factory=list)
    expired: list[uuid.UUID] = field(default_factory=list)


def job_reap_stale(*, now: datetime | None = None) -> ReapReport:
    """End the jobs nothing will end: never calls a cluster.

    A started job still IN_PROGRESS longer than its timeout (the cluster's when the job was
    submitted) plus TMS_REAP_GRACE
    becomes UNKNOWN (its worker died mid-call; the cluster may have applied it). A job no
    worker started within TMS_QUEUE_EXPIRY becomes FAILED, and its task, should it run
    later, does nothing.
    """
    now = now or timezone.now()
    report = ReapReport()
    grace = timedelta(seconds=settings.TMS_REAP_GRACE)
    running = Job.objects.in_progress().filter(started_at__isnull=False)
    # By the timeout each job was submitted with: one query per distinct timeout.
    for timeout in running.order_by().values_list("timeout_seconds", flat=True).distinct():
        cutoff = now - timedelta(seconds=timeout or 0) - grace
        for job_id in running.filter(timeout_seconds=timeout, started_at__lt=cutoff).values_list(
            "pk", flat=True
        ):
            if _end(
                job_id,
                condition=Q(started_at__lt=cutoff),
                status=Status.UNKNOWN,
                event=Event.JOB_UNKNOWN,
                error_message=INTERRUPTED,
                details={"reason": "interrupted"},
            ):
                report.unknown.append(job_id)

    # A job waiting for its cluster's free call was last looked at by a worker when it was
    # put back: it expires only once no worker has looked at it for the whole expiry.
    expiry = now - timedelta(seconds=settings.TMS_QUEUE_EXPIRY)
    forgotten = Q(started_at__isnull=True, created_at__lt=expiry) & (
        Q(waiting_since__isnull=True) | Q(waiting_since__lt=expiry)
    )
    queued = Job.objects.in_progress().filter(forgotten)
    for job_id in queued.values_list("pk", flat=True):
        if _end(
            job_id,
            condition=forgotten,
            status=Status.FAILED,
            event=Event.JOB_FAILED,
            error_message=NOT_STARTED,
            details={"reason": "not_started"},
        ):
            report.expired.append(job_id)
    return report


def job_requeue(*, job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Queue a task again for each of these jobs that is still not started: for jobs whose
    task row was lost with a killed worker before the job was claimed. Never calls a cluster,
    and a job delivered twice still runs once (the claim). Returns the jobs queued again."""
    with transaction.atomic():
        requeued = list(
            Job.objects.in_progress()
            .filter(pk__in=job_ids, started_at__isnull=True)
            .values_list("pk", flat=True)
        )
        _enqueue(requeued)
    for job_id in requeued:
        logger.warning(
            "job %s queued again: its task was lost before it started the job",
            job_id,
            extra={"job_id": str(job_id)},
        )
    return requeued


def job_interrupted(*, job_id: uuid.UUID, last_seen: datetime) -> bool:
    """End as UNKNOWN a started job whose worker went silent, its last sign of life at
    `last_seen`: its call was cut off then, or within a heartbeat of it, so the job records how
    long the call had run (`call_ran_ms`) instead of waiting for the reaper's timeout. Never
    calls a cluster. Returns False, changing nothing, unless the job was started and is still
    IN_PROGRESS."""
    started_at = (
        Job.objects.in_progress()
        .filter(pk=job_id, started_at__isnull=False)
        .values_list("started_at", flat=True)
        .first()
    )
    if started_at is None:
        return False
    ran = max(last_seen - started_at, timedelta(0))
    return _end(
        job_id,
        condition=Q(started_at=started_at),
        status=Status.UNKNOWN,
        event=Event.JOB_UNKNOWN,
        error_message=INTERRUPTED,
        details={"reason": "interrupted", "call_ran_ms": round(ran.total_seconds() * 1000)},
    )


@dataclass
class CancelReport:
    cancelled: list[uuid.UUID] = field(default_factory=list)
    # Why each job that was not cancelled was not, by job id.
    refused: dict[uuid.UUID, str] = field(default_factory=dict)


def job_cancel(
    *, job_ids: Sequence[uuid.UUID], user=None, ip_address: str | None = None
) -> CancelReport:
    """Cancel queued jobs: each one not yet sent to its cluster ends CANCELLED, its customers
    released and its token deleted, audited with who cancelled it (`user`; None for a
    maintainer at a shell). The compare-and-set against the worker's claim (both need the job
    not started) lets exactly one of them win: a job the worker claimed first is refused, and a
    cancelled job's task finds nothing to run. Only the job's operator or an admin
    (superuser) may cancel it: PermissionDenied otherwise, before anything changes.
    """
    jobs = {job.pk: job for job in Job.objects.filter(pk__in=job_ids).only("pk", "user_id")}
    others = any(job.user_id != getattr(user, "pk", None) for job in jobs.values())
    if user is not None and not user.is_superuser and others:
        raise PermissionDenied("Only the job's operator or an admin can cancel it.")
    who = user.get_username() if user is not None else "a maintainer"
    report = CancelReport()
    for job_id in dict.fromkeys(job_ids):
        if job_id not in jobs:
            report.refused[job_id] = "No such job."
        elif _end(
            job_id,
            condition=Q(started_at__isnull=True),
            status=Status.CANCELLED,
            event=Event.JOB_CANCELLED,
            error_message=f"Cancelled by {who} before it was sent to the cluster.",
            details={"reason": "cancelled"},
            actor=user,
            ip_address=ip_address,
        ):
            report.cancelled.append(job_id)
        else:
            status = Job.objects.filter(pk=job_id).values_list("status", flat=True).get()
            report.refused[job_id] = (
                "It was already sent to the cluster: it can no longer be cancelled."
                if status == Status.IN_PROGRESS
                else f"It has already ended ({status})."
            )
    return report
