"""A change to the queue wakes one of a worker's waiting threads, and a thread that finds a
task wakes the next (ops.wakeups.QueueWatch.wake_one): a batch of new tasks brings every idle
thread in turn, and a change that brings nothing costs one look, not one per idle thread."""

from __future__ import annotations

import signal
import threading

import pytest
from django.db import transaction
from model_bakery import baker

from devtools.fake_cluster import FakeCluster
from jobs.models import Job
from jobs.services import job_submit
from ops.wakeups import QueueWatch
from tests.helpers import TOKEN, wait_until, worker

# The slow cluster's calls are held this long: every one of them is still out when checked.
SLOW_ANSWER_SECONDS = 8


def test_a_change_wakes_one_waiting_thread(db):
    watch = QueueWatch()
    seen = watch.generation()
    woke: list[int] = []

    def wait(n: int) -> None:
        watch.wait(60, seen)
        woke.append(n)

    threads = [threading.Thread(target=wait, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    # All three wait on the condition (CPython's list of its waiters).
    wait_until(lambda: len(watch._changed._waiters) == 3, timeout=10)
    watch.wake_one()
    wait_until(lambda: len(woke) == 1, timeout=10)
    assert len(watch._changed._waiters) == 2
    watch.stop()
    for thread in threads:
        thread.join(10)
    assert sorted(woke) == [0, 1, 2]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_tasks_queued_at_once_bring_every_idle_thread_in_turn(operator, cluster, fake_cluster):
    """One commit queues three jobs: on PostgreSQL one NOTIFY, which wakes one thread; each
    thread that finds a job wakes the next. (On SQLite the claims' own commits wake the
    watcher too.) The worker's own look comes only every 60 s here."""
    with FakeCluster(answer_seconds=SLOW_ANSWER_SECONDS) as slow_fake:
        slow = baker.make(
            "jobs.Cluster", name="slow", base_url=slow_fake.url, max_concurrent_calls=4
        )
        process = worker("--concurrency", "4", "--interval", "60")
        try:
            # Once a first job has run, the worker's four threads wait for a change.
            [first] = job_submit(user=operator, action=1, cluster=cluster, cids="F1", token=TOKEN)
            wait_until(lambda: Job.objects.get(pk=first.pk).status == "SUCCESS", timeout=30)
            with transaction.atomic():
                for n in range(3):
                    job_submit(user=operator, action=1, cluster=slow, cids=f"S{n}", token=TOKEN)
            # All three calls are out before the first of them is answered.
            wait_until(lambda: slow_fake.concurrency()["in_flight"] == 3, timeout=5)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=90)
        assert process.returncode == 0, output
    assert set(Job.objects.filter(cluster=slow).values_list("status", flat=True)) == {"SUCCESS"}
