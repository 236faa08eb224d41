from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from jobs.clusters import cluster_save
from jobs.models import ApprovalRule, Cluster, JobAction
from jobs.services import approval_rule_create, credential_set, credential_status
from lib.argtypes import port

DEMO_USERS = [
    # username, group, is_staff, is_superuser
    ("operator", "Operators", False, False),
    ("auditor", "Auditors", True, False),
    ("admin", None, True, True),
    ("approver", "Approvers", False, False),
]
DEMO_CLUSTER = "local"


class Command(BaseCommand):
    help = (
        "Creates the demo users operator (Operators), auditor (Auditors, staff), admin "
        "(superuser) and approver (Approvers), an active cluster 'local' at "
        "http://127.0.0.1:PORT, the fake cluster (--fake-cluster-port, the port run_dashboard "
        "starts it on), and, unless a rule names 'local' already, an approval rule: PE-Finalize "
        "on 'local' waits for a member of Approvers; and a stored credential for 'local' (a "
        "random token the fake cluster accepts), so that schedules run. "
        "Passwords come from TMS_DEMO_OPERATOR_PASSWORD, TMS_DEMO_AUDITOR_PASSWORD, "
        "TMS_DEMO_ADMIN_PASSWORD and TMS_DEMO_APPROVER_PASSWORD (unset or empty: generated and "
        "printed once). Anything that "
        "already exists is left as it is, so running it again changes nothing; to set a new "
        "password later, run manage.py changepassword USERNAME."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fake-cluster-port", type=port, default=9100)

    @transaction.atomic
    def handle(self, *, fake_cluster_port: int, **options) -> None:
        User = get_user_model()
        created = []
        for username, group_name, is_staff, is_superuser in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                continue
            env_name = f"TMS_DEMO_{username.upper()}_PASSWORD"
            # Unset and empty are the same: a generated password, shown once.
            chosen = os.environ.get(env_name, "")
            password = chosen or secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=username,
                password=password,
                is_staff=is_staff,
                is_superuser=is_superuser,
            )
            if group_name:
                user.groups.add(Group.objects.get(name=group_name))
            shown = f"password from {env_name}" if chosen else f"generated password: {password}"
            self.stdout.write(f"Created user {username} ({shown})")
            created.append(username)

        base_url = f"http://127.0.0.1:{fake_cluster_port}"
        existing = Cluster.objects.filter(name=DEMO_CLUSTER).first()
        if existing is None:
            try:
                cluster_save(cluster=Cluster(name=DEMO_CLUSTER, base_url=base_url))
            except ValidationError as exc:
                messages = " ".join(exc.messages)
                raise CommandError(f"Cannot create the cluster local: {messages}") from None
            self.stdout.write(f"Created cluster local at {base_url}")
            created.append("cluster local")
        elif existing.base_url != base_url:
            # Left as it is, like everything that exists; but its calls will not reach the fake
            # cluster, so say where to change it.
            self.stdout.write(
                self.style.WARNING(
                    f"The cluster local is at {existing.base_url}, not at the fake cluster's "
                    f"{base_url}: change it in the admin to reach the fake cluster."
                )
            )

        local = Cluster.objects.get(name=DEMO_CLUSTER)
        if not ApprovalRule.objects.filter(cluster=local).exists():
            approval_rule_create(
                rule=ApprovalRule(
                    cluster=local,
                    action=JobAction.PE_FINALIZE,
                    approvers_group=Group.objects.get(name="Approvers"),
                )
            )
            self.stdout.write("Created approval rule: PE-Finalize on local waits for Approvers")
            created.append("approval rule")

        if not credential_status(cluster=local).set:
            credential_set(cluster=local, token=secrets.token_urlsafe(24))
            self.stdout.write("Created a stored credential for local, for scheduled runs")
            created.append("stored credential")

        if created:
            self.stdout.write(self.style.SUCCESS(f"seed_demo: created {', '.join(created)}."))
        else:
            self.stdout.write("seed_demo: everything already exists; nothing created.")
