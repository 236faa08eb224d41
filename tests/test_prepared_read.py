"""A read built once (lib.prepared) answers each run with that run's values, as the ORM would."""

from __future__ import annotations

import datetime as dt
import uuid

from django.utils import timezone

from jobs.models import ChangeFreeze
from jobs.services import job_submit
from jobs.services.freezes import hold_annotations
from jobs.services.running import _started_job
from lib.prepared import PreparedRead
from tests.helpers import TOKEN

HOUR = dt.timedelta(hours=1)


def claimed(job_id, at):
    return _started_job(job_id).annotate(**hold_annotations(at))


def test_each_run_reads_its_own_job_at_its_own_moment_from_one_build(operator, cluster):
    jobs = job_submit(user=operator, action=1, cluster=cluster, cids="P1\nP2", token=TOKEN)
    jobs += job_submit(user=operator, action=1, cluster=cluster, cids="P3", token=TOKEN)
    now = timezone.now()
    frozen = now + dt.timedelta(minutes=1)
    freeze = ChangeFreeze.objects.create(
        cluster=cluster, starts_at=now, ends_at=now + HOUR, reason="release"
    )
    builds = []

    def build(job_id, at):
        builds.append(job_id)
        return claimed(job_id, at)

    read = PreparedRead(build)
    for job in jobs:
        for at in (now - HOUR, frozen, now + 2 * HOUR):
            got = read.first(job.pk, at)
            orm = claimed(job.pk, at).get()
            assert (got.pk, got.cluster.name, got.ciphertext, got.created_at) == (
                orm.pk,
                orm.cluster.name,
                orm.ciphertext,
                orm.created_at,
            )
            assert (got.freeze_until, got.has_windows) == (orm.freeze_until, orm.has_windows)
            assert got.freeze_until == (freeze.ends_at if at == frozen else None)
    assert len(builds) == 1


def test_a_job_that_is_not_there_reads_as_none(db):
    assert PreparedRead(claimed).first(uuid.uuid4(), timezone.now()) is None
