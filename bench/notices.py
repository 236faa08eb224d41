"""Measures what notifications cost: ending jobs with and without recipients, and delivering.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/notices.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    createdb -h 127.0.0.1 -U postgres tms_bench_notices
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_notices \
        .venv/bin/python bench/notices.py

1. Ending JOBS started jobs (as UNKNOWN, through jobs.services.job_interrupted, each in its own
   transaction as a worker's end is), first with nobody to tell, then with two webhook
   endpoints and three e-mail recipients (the operator and two people watching every job): the
   ratio is what writing the outbox adds to a job's end.
2. Delivering those notices one after another, in this process, to a webhook receiver and an
   SMTP server on loopback that acknowledge at once: notices a second, per channel.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scratch import scratch_django

scratch_django("notices")

from aiosmtpd.controller import Controller  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from jobs.models import Cluster, Job  # noqa: E402
from jobs.services import job_interrupted  # noqa: E402
from notifications.delivery import notice_deliver  # noqa: E402
from notifications.models import Notice, NotificationPreference, WebhookEndpoint  # noqa: E402

JOBS = 300


class Acknowledge(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass


class Accept:
    async def handle_DATA(self, server, session, envelope) -> str:
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def started_jobs(user: User, cluster: Cluster, count: int) -> list[uuid.UUID]:
    now = timezone.now()
    jobs = [
        Job(
            user=user,
            cluster=cluster,
            cluster_url=cluster.base_url,
            action=1,
            customer_count=1,
            started_at=now,
            timeout_seconds=30,
        )
        for _ in range(count)
    ]
    Job.objects.bulk_create(jobs)
    return [job.pk for job in jobs]


def end_all(job_ids: list[uuid.UUID]) -> float:
    started = time.perf_counter()
    for job_id in job_ids:
        if not job_interrupted(job_id=job_id, last_seen=timezone.now()):
            sys.exit(f"job {job_id} did not end")
    return time.perf_counter() - started


def main() -> None:
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Notice.objects.all().delete()
    WebhookEndpoint.objects.all().delete()
    Job.objects.all().delete()
    User.objects.filter(username__startswith="bench-").delete()
    Cluster.objects.filter(name="bench").delete()
    operator = User.objects.create(username="bench-operator", email="op@bench.test")
    operator.groups.add(Group.objects.get(name="Operators"))
    for name in ("bench-watcher-1", "bench-watcher-2"):
        watcher = User.objects.create(username=name, email=f"{name}@bench.test")
        watcher.groups.add(Group.objects.get(name="Auditors"))
        NotificationPreference.objects.create(user=watcher, all_jobs=True)
    cluster = Cluster.objects.create(name="bench", base_url="http://127.0.0.1:9")
    print(f"engine: {connection.vendor}")

    settings.TMS_MAIL_ENABLED = False
    quiet = end_all(started_jobs(operator, cluster, JOBS))
    print(f"end {JOBS} jobs, nobody to tell:           {quiet / JOBS * 1000:6.2f} ms a job")

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Acknowledge)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    for n in range(2):
        WebhookEndpoint.objects.create(
            url=f"http://127.0.0.1:{receiver.server_address[1]}/{n}", secret="b" * 32
        )
    smtp = Controller(Accept(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings.TMS_MAIL_ENABLED = True
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.TMS_NOTIFY_DIGEST_AFTER = 10 * JOBS
    told = end_all(started_jobs(operator, cluster, JOBS))
    print(
        f"end {JOBS} jobs, 2 endpoints + 3 addresses: {told / JOBS * 1000:6.2f} ms a job "
        f"({told / quiet:.2f}x)"
    )

    for channel in (Notice.Channel.WEBHOOK, Notice.Channel.EMAIL):
        ids = list(Notice.objects.filter(channel=channel).values_list("pk", flat=True))
        started = time.perf_counter()
        for notice_id in ids:
            notice_deliver(notice_id=notice_id)
        elapsed = time.perf_counter() - started
        print(f"deliver {len(ids)} {channel} notices one at a time: {len(ids) / elapsed:6.0f}/s")
    if unsent := Notice.objects.exclude(state=Notice.State.SENT).count():
        sys.exit(f"{unsent} notice(s) not delivered")
    receiver.shutdown()
    smtp.stop()


if __name__ == "__main__":
    main()
