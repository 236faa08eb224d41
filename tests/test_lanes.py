"""A cluster whose calls hang never takes every thread of a worker process (jobs.lanes): a job
for a healthy cluster runs while the hanging calls are still out."""

from __future__ import annotations

import datetime as dt
import signal
import threading

import pytest
from django.db import DatabaseError
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from audit.models import AuditEntry
from devtools.fake_cluster import FakeCluster
from jobs.lanes import (
    lane_queue,
    lane_release,
    lane_take,
    lanes_configure,
    lanes_full,
    lanes_in_calls,
)
from jobs.models import InFlightCall, Job
from jobs.services import job_submit
from ops.wakeups import QueueWatch
from ops.worker import _Loop
from tests.helpers import TOKEN, wait_until, worker

HANGING_JOBS = 8
# Every call to the hanging cluster is held this long by the fake, unless the case says less.
HANG_SECONDS = 600
# The hanging cluster's timeout, in the cases where its calls time out.
HANG_TIMEOUT = 4


@pytest.fixture
def no_share():
    """This test process's lanes as a worker of one thread leaves them, before and after."""
    lanes_configure(concurrency=None)
    yield
    lane_release()
    lanes_configure(concurrency=None)


@pytest.mark.parametrize(
    ("concurrency", "share"), [(1, None), (2, 1), (3, 2), (4, 3), (8, 6), (16, 12)]
)
def test_a_worker_keeps_a_quarter_of_its_threads_at_least_one_free_of_any_one_cluster(
    concurrency, share, no_share
):
    assert lanes_configure(concurrency=concurrency) == share


def test_a_claim_beyond_the_share_is_refused_until_a_lane_is_given_back(no_share):
    lanes_configure(concurrency=4)
    taken: list[bool] = []

    def call(cluster_id: int, done: threading.Event, hold: threading.Event) -> None:
        taken.append(lane_take(cluster_id))
        done.set()
        hold.wait()
        lane_release()

    hold = threading.Event()
    threads = []
    for _ in range(3):
        done = threading.Event()
        thread = threading.Thread(target=call, args=(1, done, hold))
        thread.start()
        done.wait()
        threads.append(thread)
    try:
        assert taken == [True] * 3
        # This thread is the fourth: the share for cluster 1 is taken, another cluster's free.
        assert lane_take(1) is False
        assert lanes_in_calls() == {1: 3}
        assert lanes_full() == [1]
        assert lane_take(2) is True
        assert lanes_in_calls() == {1: 3, 2: 1}
        # A thread holds one lane: asking for another cluster gives the first back.
        assert lane_take(1) is False
        assert lanes_in_calls() == {1: 3}
    finally:
        hold.set()
        for thread in threads:
            thread.join()
    assert lanes_in_calls() == {}
    assert lanes_full() == []
    assert lane_take(1) is True
    lane_release()
    assert lanes_in_calls() == {}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_thread_whose_look_is_stale_leaves_a_full_clusters_job_queued(
    operator, cluster, no_share
):
    """Three other threads took the cluster's share after this thread last worked out which
    queues to pass over: it takes the job's lane before claiming its task, finds it taken,
    and leaves the task queued instead of claiming the job and putting it back."""
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="L1", token=TOKEN)
    loop = _Loop(worker_id="test", watch=QueueWatch(), idle_wait=1, once=True)
    lanes_configure(concurrency=4)
    hold = threading.Event()

    def call(done: threading.Event) -> None:
        lane_take(cluster.pk)
        done.set()
        hold.wait()
        lane_release()

    threads = []
    for _ in range(3):
        done = threading.Event()
        threads.append(threading.Thread(target=call, args=(done,)))
        threads[-1].start()
        done.wait()
    try:
        assert loop.excluded_queue_names == []
        loop._take_tasks()
    finally:
        hold.set()
        for thread in threads:
            thread.join()
    # Still its one task, ready; the job neither started nor put back to wait.
    assert list(DBTaskResult.objects.values_list("status", flat=True)) == ["READY"]
    job.refresh_from_db()
    assert (job.started_at, job.waiting_since) == (None, None)
    assert lanes_in_calls() == {}


class _TaskGoneAfterLaneTaken(_Loop):
    """A loop whose task is removed (another process cancelled or purged it) once the lane
    is taken and before the claim, in the claim's own transaction."""

    @staticmethod
    def _take_lane(task: DBTaskResult) -> bool:
        taken = _Loop._take_lane(task)
        DBTaskResult.objects.filter(pk=task.pk).delete()
        return taken


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_claim_that_fails_after_the_lane_is_taken_gives_the_lane_back(
    operator, cluster, no_share
):
    """The claim fails (its task row is gone): the error is raised, the claim's transaction
    is undone, and the lane taken for the task is given back, not held by a thread that runs
    nothing."""
    job_submit(user=operator, action=1, cluster=cluster, cids="L1", token=TOKEN)
    loop = _TaskGoneAfterLaneTaken(worker_id="test", watch=QueueWatch(), idle_wait=1, once=True)
    lanes_configure(concurrency=4)
    with pytest.raises(DatabaseError):
        loop._take_tasks()
    assert lanes_in_calls() == {}
    assert list(DBTaskResult.objects.values_list("status", flat=True)) == ["READY"]


def test_without_a_share_every_thread_may_call_one_cluster(no_share):
    results: list[bool] = []
    hold = threading.Barrier(9)

    def call() -> None:
        results.append(lane_take(1))
        hold.wait()
        lane_release()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    hold.wait()
    for thread in threads:
        thread.join()
    assert results == [True] * 8


def most_at_once(jobs: list[Job]) -> int:
    """The most of these jobs' calls out at the same time: each from its claim (`started_at`)
    for as long as its audit entry says the call took. Not to its recorded end: a thread gives
    its lane back when the call returns, before the end is recorded, and another thread may
    claim the next job meanwhile, its call starting after the first one's returned."""
    took = {
        entry.job_id: dt.timedelta(milliseconds=entry.details["duration_ms"])
        for entry in AuditEntry.objects.filter(
            job_id__in=[job.pk for job in jobs], event__in=["job.succeeded", "job.failed"]
        )
    }
    events = sorted(
        [(job.started_at, 1) for job in jobs]
        + [(job.started_at + took[job.pk], -1) for job in jobs],
        key=lambda event: (event[0], event[1]),
    )
    out = most = 0
    for _when, change in events:
        out += change
        most = max(most, out)
    return most


def run_worker_until(process, condition, timeout: float) -> None:
    try:
        wait_until(condition, timeout=timeout)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("concurrency", "share", "hang_seconds", "timeout", "hung_status"),
    [
        # The defaults: a cluster's limit of 4 calls, a worker of 4 threads; the calls time out.
        (4, 3, HANG_SECONDS, HANG_TIMEOUT, "FAILED"),
        # A larger worker with the cluster's limit raised to it; the hang ends before the timeout.
        (8, 6, HANG_TIMEOUT, 60, "SUCCESS"),
    ],
    ids=["defaults-calls-time-out", "limit-raised-to-8-hang-ends"],
)
def test_a_hanging_cluster_leaves_a_thread_for_a_healthy_clusters_job(
    operator, cluster, fake_cluster, concurrency, share, hang_seconds, timeout, hung_status
):
    with FakeCluster(answer_seconds=hang_seconds) as hanging_fake:
        hanging = baker.make(
            "jobs.Cluster",
            name="hanging",
            base_url=hanging_fake.url,
            timeout_seconds=timeout,
            max_concurrent_calls=concurrency,
        )
        # Queued first: the healthy cluster's job is behind all of them.
        hung = [
            job_submit(user=operator, action=1, cluster=hanging, cids=f"H{n}", token=TOKEN)[0]
            for n in range(HANGING_JOBS)
        ]
        [healthy] = job_submit(user=operator, action=1, cluster=cluster, cids="G1", token=TOKEN)
        process = worker("--concurrency", str(concurrency))
        run_worker_until(
            process,
            lambda: not Job.objects.filter(status="IN_PROGRESS").exists(),
            timeout=120,
        )
        counts = {str(job.pk): hanging_fake.count(str(job.pk)) for job in hung}

    healthy.refresh_from_db()
    hung = list(Job.objects.filter(cluster=hanging))
    assert (healthy.status, fake_cluster.count(str(healthy.pk))) == ("SUCCESS", 1)
    # It ended while the hanging cluster had its share of calls out and none of them had ended.
    first_end = min(job.finished_at for job in hung)
    assert healthy.finished_at < first_end
    assert sum(job.started_at < healthy.finished_at for job in hung) == share
    # One worker process never had more than its share of calls out to the hanging cluster.
    assert most_at_once(hung) == share
    # Each hanging job was called once and ended with the truth: its timeout, or its answer.
    assert set(counts.values()) == {1}
    assert {job.status for job in hung} == {hung_status}
    assert not InFlightCall.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_job_held_back_by_one_processs_share_is_taken_by_another_process(operator):
    with FakeCluster(answer_seconds=HANG_SECONDS) as hanging_fake:
        hanging = baker.make(
            "jobs.Cluster",
            name="hanging",
            base_url=hanging_fake.url,
            timeout_seconds=120,
            max_concurrent_calls=8,
        )
        hung = [
            job_submit(user=operator, action=1, cluster=hanging, cids=f"H{n}", token=TOKEN)[0]
            for n in range(4)
        ]
        first = worker("--concurrency", "4")
        second = None
        try:
            # The first process makes its share of 3 calls and leaves the fourth job queued,
            # though the cluster has calls to spare: its threads take a lane before a task.
            wait_until(lambda: hanging_fake.concurrency()["in_flight"] == 3)
            wait_until(
                lambda: Job.objects.filter(cluster=hanging, started_at__isnull=False).count() == 3
            )
            assert Job.objects.filter(
                cluster=hanging, started_at__isnull=True, waiting_since__isnull=True
            ).exists()
        except BaseException:
            hanging_fake.stop()
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=90)
            raise
        # The first process stops taking tasks (its calls stay out), so that the job's claim is
        # another process's: one with threads free takes it from the queue.
        first.send_signal(signal.SIGTERM)
        try:
            second = worker("--concurrency", "1")
            wait_until(lambda: hanging_fake.concurrency()["in_flight"] == 4, timeout=60)
        finally:
            # The hanging cluster goes away: its calls are cut off, and the jobs end FAILED. The
            # first process, told to stop already, leaves once its calls are recorded.
            hanging_fake.stop()
            output, _ = first.communicate(timeout=90)
            assert first.returncode == 0, output
            if second is not None:
                run_worker_until(
                    second,
                    lambda: not Job.objects.filter(status="IN_PROGRESS").exists(),
                    timeout=60,
                )
        assert {hanging_fake.count(str(job.pk)) for job in hung} == {1}
    assert {job.status for job in Job.objects.all()} == {"FAILED"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_thread_kept_free_passes_over_the_jobs_of_a_cluster_whose_share_is_taken(
    operator, cluster, fake_cluster
):
    """The thread kept free leaves the queued jobs of a cluster holding its process's share
    where they are, rather than claiming each and putting it back to wait."""
    with FakeCluster(answer_seconds=HANG_SECONDS) as hanging_fake:
        hanging = baker.make(
            "jobs.Cluster",
            name="hanging",
            base_url=hanging_fake.url,
            timeout_seconds=120,
            max_concurrent_calls=8,
        )
        process = worker("--concurrency", "4")
        try:
            for n in range(3):
                job_submit(user=operator, action=1, cluster=hanging, cids=f"H{n}", token=TOKEN)
            wait_until(lambda: hanging_fake.concurrency()["in_flight"] == 3)
            # Queued while the share is taken, before the healthy cluster's job.
            passed_over = [
                job_submit(user=operator, action=1, cluster=hanging, cids=f"P{n}", token=TOKEN)[0]
                for n in range(HANGING_JOBS)
            ]
            [healthy] = job_submit(user=operator, action=1, cluster=cluster, cids="G1", token=TOKEN)
            wait_until(lambda: Job.objects.filter(pk=healthy.pk, status="SUCCESS").exists())
            queued = Job.objects.filter(pk__in=[job.pk for job in passed_over])
            assert not queued.filter(waiting_since__isnull=False).exists()
            assert not queued.filter(started_at__isnull=False).exists()
            tasks = DBTaskResult.objects.filter(queue_name=lane_queue(hanging.pk))
            assert tasks.count() == 3 + HANGING_JOBS
            assert tasks.filter(status="READY").count() == HANGING_JOBS
        finally:
            # The hanging cluster goes away: its calls are cut off and the queued jobs' calls
            # find nobody; every job ends FAILED, called once at most.
            hanging_fake.stop()
            run_worker_until(
                process,
                lambda: not Job.objects.filter(status="IN_PROGRESS").exists(),
                timeout=90,
            )
        assert max(hanging_fake.counts().values()) == 1
    assert fake_cluster.count(str(healthy.pk)) == 1
