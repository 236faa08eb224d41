"""Recording a Set Action: one job per chunk of customers, its token, its customers held
against other jobs on the cluster, its audit entry and its task, in one transaction; the same
idempotency key again replays the first submit's jobs. A submission an approval rule covers
is recorded alike, PENDING_APPROVAL, with its approval request instead of tasks."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Cluster, ClusterCredential, InFlightCustomer, Job, JobCustomer, JobToken
from jobs.services.approving import (
    ApprovalNeeded,
    Preapproval,
    _covering_rule,
    _request_open,
    _request_recorded,
    approval_needed,
)
from jobs.services.busy import (
    BusyCustomer,
    CustomerConflict,
    _conflict,
    _conflicting_job_ids,
    busy_customers,
)
from jobs.services.digests import part_digest
from jobs.services.freezes import (
    FreezeOverride,
    Frozen,
    freeze_check,
    freeze_override_record,
)
from jobs.services.input import _validated
from jobs.services.running import _enqueue
from jobs.tokens import token_encrypt, token_fingerprint
from lib.chunks import batched

logger = logging.getLogger(__name__)

Event = AuditEntry.Event


class Submitted(list):
    """The jobs a submit or retry recorded: a list, with `replayed` true when its idempotency
    key had already made them (nothing was written this time)."""

    # Rebuilt like any list from its items where Django resolves a value (`job__in=jobs`):
    # hence the defaults.
    def __init__(self, jobs: Iterable[Job] = (), *, replayed: bool = False) -> None:
        super().__init__(jobs)
        self.replayed = replayed


def _digest(action: int, cluster: Cluster, cids: list[str]) -> str:
    text = f"{action}\n{cluster.pk}\n" + "\n".join(cids)
    return hashlib.sha256(text.encode()).hexdigest()


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


def _create(
    *,
    user,
    action,
    cluster,
    parts,
    token,
    key,
    digest,
    ip_address,
    override=None,
    preapproval: Preapproval | None = None,
):
    """Record one job per part, each part being (its customers, the job it retries or None),
    sharing a batch id when there are several, and queue their tasks; or, when an approval
    rule covers the submission, hold them PENDING_APPROVAL in one approval request. A `token`
    of None: the jobs use the cluster's stored credential (no JobToken is written). A
    `preapproval` of the very rule that covers the submission lets it through without a
    request, audited on each job; any other rule still asks for one."""
    batch_id = uuid.uuid4() if len(parts) > 1 else None
    rule = _covering_rule(action, cluster, sum(len(chunk) for chunk, _retry_of in parts))
    if rule is not None and preapproval is not None and rule.pk == preapproval.rule_id:
        rule = None
    else:
        preapproval = None
    now = timezone.now()
    fingerprint = token_fingerprint(token) if token is not None else _stored_fingerprint(cluster)
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
                status=Job.Status.PENDING_APPROVAL if rule else Job.Status.IN_PROGRESS,
                # The key and digest live on the first job; the batch id finds the rest.
                idempotency_key=key if seq == 1 else None,
                submission_digest=digest if seq == 1 else "",
                token_fingerprint=fingerprint,
                uses_stored_credential=token is None,
                retry_of=retry_of,
                created_at=now,
                freeze_override_reason=override.reason if override else "",
                freeze_overridden_by=override.user if override else None,
            )
        )
    with transaction.atomic():
        _lock_retried({retry_of.pk for _chunk, retry_of in parts if retry_of is not None})
        request = None
        if rule:
            digests = [
                part_digest(job, chunk) for job, (chunk, _retry_of) in zip(jobs, parts, strict=True)
            ]
            request = _request_open(
                user=user, rule=rule, batch_id=batch_id, part_digests=digests, now=now
            )
            for job in jobs:
                job.approval = request
        Job.objects.bulk_create(jobs)
        if token is not None:
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
                    "stored_credential": token is None,
                    **({"preapproved": preapproval.details()} if preapproval else {}),
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
        if override:
            freeze_override_record(override, jobs, ip_address)
        if request:
            # Held: its tasks are queued when it is approved (jobs.services.approving).
            _request_recorded(request, jobs, user, ip_address)
        else:
            # The queue is a table of the same database: the tasks are committed with their
            # jobs or not at all, so no process can die between the two and leave a job no
            # worker will ever run.
            _enqueue([job.pk for job in jobs], cluster_id=cluster.pk)
    for job in jobs:
        logger.info(
            "job %s submitted: %s on %s, %d customer(s)%s",
            job.pk,
            action_name,
            cluster.name,
            job.customer_count,
            f", waiting for approval {request.pk}" if request else "",
            extra={"job_id": str(job.pk)},
        )
    return jobs


def _stored_fingerprint(cluster: Cluster) -> str:
    """The fingerprint of `cluster`'s stored credential; refused on "token" when it has none
    (removed since the submission was checked)."""
    fingerprint = (
        ClusterCredential.objects.filter(cluster=cluster)
        .values_list("fingerprint", flat=True)
        .first()
    )
    if fingerprint is None:
        raise ValidationError(
            {"token": [f"Cluster {cluster.name} has no stored credential: give a token."]}
        )
    return fingerprint


@dataclass(frozen=True)
class SubmitPreview:
    """What `job_submit` would record: the action, the cluster, the customers (blanks and
    repeats dropped) and how many jobs they are split into; when an approval rule covers it,
    who must approve it before it is sent; and an admin's override of a freeze."""

    action: int
    cluster: Cluster
    cids: list[str]
    parts: int
    approval: ApprovalNeeded | None = None
    # An admin's override of the freeze that covers the cluster now.
    override: FreezeOverride | None = None
    # The customers a job in progress on the cluster holds now (in the order of `cids`).
    busy: tuple[BusyCustomer, ...] = ()

    @property
    def free(self) -> list[str]:
        """The customers no job in progress holds: those a submit could run now."""
        held = {customer.cid for customer in self.busy}
        return [cid for cid in self.cids if cid not in held]


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def job_submit_preview(
    *,
    user,
    action: int | str,
    cluster: Cluster | str,
    cids: str | Sequence[str],
    token: str | None = None,
    stored_credential: bool = False,
    unattended: bool = False,
    idempotency_key: str | None = None,
    cid_positions: Sequence[str] | None = None,
    freeze_override_reason: str = "",
) -> SubmitPreview:
    """Check a Set Action as `job_submit` checks it, and say what it would record; writes
    nothing. Raises ValidationError (by field) for bad input, and Frozen as `job_submit`
    does. It names the customers busy now (`busy_customers`); whether they still are is
    decided by `job_submit` alone, when it records the jobs. None are busy for a submission
    that its idempotency key already made (the jobs holding them are its own: a confirmation
    replays them), and the key used for another submission is refused as `job_submit` does.
    """
    action, cluster, cid_list = _validated(
        user=user,
        action=action,
        cluster=cluster,
        cids=cids,
        cid_positions=cid_positions,
        token=token,
        idempotency_key=idempotency_key,
        stored_credential=stored_credential,
        unattended=unattended,
    )
    override = freeze_check(
        user=user, cluster=cluster, override_reason=freeze_override_reason, at=timezone.now()
    )
    made = idempotency_key and _replay(user, idempotency_key, _digest(action, cluster, cid_list))
    return SubmitPreview(
        action=action,
        cluster=cluster,
        cids=cid_list,
        parts=len(_chunks(cid_list, cluster)),
        approval=approval_needed(action=action, cluster=cluster, customers=len(cid_list)),
        override=override,
        busy=() if made else tuple(busy_customers(user=user, cluster=cluster, cids=cid_list)),
    )


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def job_submit(
    *,
    user,
    action: int | str,
    cluster: Cluster | str,
    cids: str | Sequence[str],
    token: str | None = None,
    stored_credential: bool = False,
    unattended: bool = False,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
    cid_positions: Sequence[str] | None = None,
    retry_of: Job | None = None,
    freeze_override_reason: str = "",
    preapproval: Preapproval | None = None,
) -> Submitted:
    """Record a Set Action as one job (or one per chunk of the cluster's
    `max_cids_per_request`, sharing a batch id) and enqueue each job's task in the same transaction.
    When an approval rule covers it (jobs.services.approving), the jobs are recorded alike
    (token sealed, customers held) but PENDING_APPROVAL, in one approval request, and no task
    is queued until it is approved.

    Raises ValidationError (by field) for bad input, CustomerConflict when a customer has
    a job in progress on the cluster, and Frozen (jobs.services.freezes) when a change freeze
    covers the cluster now; any way nothing is written. An admin's `freeze_override_reason`
    lets it through a freeze, recorded on each job and audited. The same user and
    idempotency key again returns the first submit's jobs and writes nothing; the same key
    with other content is refused. Safe under concurrent submits: the database's unique
    constraints decide, not a check made before the insert.

    With `stored_credential` (and no `token`) the jobs are sent with the cluster's stored
    credential, which only their worker decrypts, when it calls the cluster: refused on
    "token" when the cluster has none, and NotGranted unless a run grant of the user allows
    it, or the run is `unattended` (a schedule's, which needs the ordinary run grant only).

    `preapproval` is the scheduler's alone: a schedule's version approved under the rule that
    covers this run, which then waits for no request of its own (see Preapproval).
    """
    action, cluster, cid_list = _validated(
        user=user,
        action=action,
        cluster=cluster,
        cids=cids,
        cid_positions=cid_positions,
        token=token,
        idempotency_key=idempotency_key,
        stored_credential=stored_credential,
        unattended=unattended,
    )
    try:
        override = freeze_check(
            user=user, cluster=cluster, override_reason=freeze_override_reason, at=timezone.now()
        )
    except Frozen:
        # The same submit again, its first made before the freeze: replayed, not refused.
        digest = _digest(action, cluster, cid_list)
        if idempotency_key and (jobs := _replay(user, idempotency_key, digest)) is not None:
            return Submitted(jobs, replayed=True)
        raise
    parts = [(chunk, retry_of) for chunk in _chunks(cid_list, cluster)]
    return _record(
        user=user,
        action=action,
        cluster=cluster,
        parts=parts,
        token=None if stored_credential else token,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
        override=override,
        preapproval=preapproval,
    )


def _lock_retried(job_ids: set[uuid.UUID]) -> None:
    """Lock the jobs retried to the commit, refusing those gone: a purge
    (jobs.services.retention) deletes a job only when nothing retries it, so either it waits
    for these retries and keeps the job, or it deleted the job first and the retry is refused
    here, in words, rather than by the database's foreign key."""
    if not job_ids:
        return
    kept = set(Job.objects.select_for_update().filter(pk__in=job_ids).values_list("pk", flat=True))
    if kept != job_ids:
        raise ValidationError(
            "The job retried is no longer kept: it was purged. An admin can bring it back "
            "with restore_jobs.",
            code="retry_purged",
        )


def _record(
    *,
    user,
    action,
    cluster,
    parts,
    token,
    idempotency_key,
    ip_address,
    override: FreezeOverride | None = None,
    preapproval: Preapproval | None = None,
) -> Submitted:
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
                override=override,
                preapproval=preapproval,
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
