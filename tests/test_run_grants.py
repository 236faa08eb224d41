"""Run grants: who may run which action on which cluster. The migration grants Operators
everything; narrowed, the form offers only what is granted, and the service (behind the form,
its review, retries and set_action) refuses the rest with nothing written."""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps as global_apps
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster, Job, RunGrant
from jobs.services import (
    DuplicateGrant,
    NotGranted,
    job_retry,
    job_submit,
    run_choices,
    run_grant_create,
    run_grant_delete,
    run_granted,
)
from tests.helpers import THREADS, TOKEN, confirm_review, make_user, row_counts, run_concurrently

Action = Job.Action
MIGRATION = importlib.import_module("jobs.migrations.0012_operators_run_everything")


@pytest.fixture
def us1(db):
    return baker.make(Cluster, name="us1", base_url="http://127.0.0.1:9", is_active=True)


@pytest.fixture
def operators(db) -> Group:
    return Group.objects.get(name="Operators")


@pytest.fixture
def narrowed(operators, cluster, us1):
    """Operators may run PE-Enable on eu1 and T-Enable on us1, nothing else."""
    RunGrant.objects.filter(group=operators).delete()
    run_grant_create(group=operators, cluster=cluster, action=Action.PE_ENABLE)
    run_grant_create(group=operators, cluster=us1, action=Action.T_ENABLE)


def test_the_migration_grants_operators_every_action_on_every_cluster(operator, cluster, us1):
    [grant] = RunGrant.objects.all()
    assert (grant.group.name, grant.user, grant.cluster, grant.action) == (
        "Operators",
        None,
        None,
        None,
    )
    for target in (cluster, us1):
        for action in Action:
            assert run_granted(user=operator, action=action, cluster=target)
    # Run again (a re-applied migration), it adds nothing.
    MIGRATION.grant_operators(global_apps, None)
    assert RunGrant.objects.count() == 1


def test_a_user_without_a_grant_is_refused_with_nothing_written(operator, cluster, operators):
    RunGrant.objects.filter(group=operators).delete()
    before = row_counts()
    with pytest.raises(NotGranted) as refused:
        job_submit(user=operator, action="PE-Finalize", cluster="eu1", cids="C1", token=TOKEN)
    assert str(refused.value) == (
        "You may not run PE-Finalize on cluster eu1: no run grant covers it."
    )
    assert row_counts() == before


def test_a_grant_covers_its_action_and_cluster_only(operator, cluster, us1, narrowed):
    assert run_granted(user=operator, action=Action.PE_ENABLE, cluster=cluster)
    assert run_granted(user=operator, action=Action.T_ENABLE, cluster=us1)
    assert not run_granted(user=operator, action=Action.T_ENABLE, cluster=cluster)
    assert not run_granted(user=operator, action=Action.PE_ENABLE, cluster=us1)
    before = row_counts()
    with pytest.raises(NotGranted, match="T-Enable on cluster eu1"):
        job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
    assert row_counts() == before
    [job] = job_submit(user=operator, action=2, cluster=cluster, cids="C1", token=TOKEN)
    assert job.action == Action.PE_ENABLE


def test_the_check_is_one_query(operator, cluster, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert run_granted(user=operator, action=Action.PE_ENABLE, cluster=cluster)


def test_a_users_own_grant_covers_them_alone(cluster, operators):
    RunGrant.objects.filter(group=operators).delete()
    alice, bob = make_user("alice", "Operators"), make_user("bob", "Operators")
    run_grant_create(user=alice, cluster=cluster, action=None)
    assert run_granted(user=alice, action=Action.PE_DIRECT, cluster=cluster)
    assert not run_granted(user=bob, action=Action.PE_DIRECT, cluster=cluster)


def test_a_grant_does_not_give_the_permission_to_run(cluster):
    stranger = make_user("stranger")
    run_grant_create(user=stranger)
    with pytest.raises(PermissionDenied, match="may not run Set Actions"):
        job_submit(user=stranger, action=1, cluster=cluster, cids="C1", token=TOKEN)


def test_a_superuser_runs_only_what_a_grant_covers(cluster):
    root = make_user("root", is_superuser=True)
    with pytest.raises(NotGranted):
        job_submit(user=root, action=1, cluster=cluster, cids="C1", token=TOKEN)
    run_grant_create(user=root, cluster=cluster, action=Action.TRANS_BEGIN, actor=root)
    [job] = job_submit(user=root, action=1, cluster=cluster, cids="C1", token=TOKEN)
    assert job.user == root


def test_the_same_grant_twice_is_refused_by_the_service_and_the_database(cluster, operators):
    before = row_counts()
    with pytest.raises(DuplicateGrant):
        run_grant_create(group=operators)
    assert row_counts() == before
    run_grant_create(group=operators, cluster=cluster, action=Action.T_ENABLE)
    # NULL (any) counts as a value: neither "any cluster" nor a named one goes in twice.
    for cluster_value, action in ((None, None), (cluster, Action.T_ENABLE)):
        with pytest.raises(IntegrityError), transaction.atomic():
            RunGrant.objects.create(group=operators, cluster=cluster_value, action=action)


@pytest.mark.parametrize("both", [True, False])
def test_a_grant_is_for_a_group_or_a_user_never_both_nor_neither(operator, operators, both):
    before = row_counts()
    who = {"group": operators, "user": operator} if both else {}
    with pytest.raises(ValidationError, match="Name a group or a user"):
        run_grant_create(**who)
    with pytest.raises(IntegrityError), transaction.atomic():
        RunGrant.objects.create(cluster=None, **who)
    assert row_counts() == before


def test_an_action_outside_the_five_is_refused_by_the_database(operators):
    with pytest.raises(IntegrityError), transaction.atomic():
        RunGrant.objects.create(group=operators, action=9)


def test_deleting_a_cluster_or_group_deletes_its_grants_never_widening_them(
    operator, operators, us1
):
    RunGrant.objects.filter(group=operators).delete()
    doomed = baker.make(Cluster, name="doomed", base_url="http://127.0.0.1:8", is_active=True)
    run_grant_create(group=operators, cluster=doomed)
    doomed.delete()
    assert not RunGrant.objects.exists()
    assert not run_granted(user=operator, action=Action.T_ENABLE, cluster=us1)
    team = Group.objects.create(name="team")
    operator.groups.add(team)
    run_grant_create(group=team, cluster=us1)
    team.delete()
    assert not RunGrant.objects.exists()


def test_creating_and_deleting_a_grant_are_audited(operators, cluster):
    admin = make_user("root", is_superuser=True)
    grant = run_grant_create(
        group=operators,
        cluster=cluster,
        action=Action.PE_FINALIZE,
        actor=admin,
        ip_address="10.0.0.7",
    )
    assert run_grant_delete(grant=grant, actor=admin, ip_address="10.0.0.8")
    assert not run_grant_delete(grant=grant, actor=admin)
    created, deleted = AuditEntry.objects.order_by("id")
    details = {
        "grant_id": grant.pk,
        "group": "Operators",
        "user": None,
        "cluster": "eu1",
        "action": "PE-Finalize",
    }
    assert (created.event, created.actor, created.ip_address, created.details) == (
        AuditEntry.Event.RUN_GRANT_CREATED,
        admin,
        "10.0.0.7",
        details,
    )
    assert (deleted.event, deleted.ip_address, deleted.details) == (
        AuditEntry.Event.RUN_GRANT_DELETED,
        "10.0.0.8",
        details,
    )


def test_the_form_offers_only_what_the_grants_cover(client, operator, cluster, us1, narrowed):
    inactive = baker.make(Cluster, name="old", base_url="http://127.0.0.1:7", is_active=False)
    run_grant_create(group=Group.objects.get(name="Operators"), cluster=inactive, action=1)
    client.force_login(operator)
    form = client.get(reverse("set_action")).context["form"]
    assert [label for code, label in form.fields["action"].choices if code] == [
        "PE-Enable",
        "T-Enable",
    ]
    assert list(form.fields["cluster"].queryset) == [cluster, us1]
    assert run_choices(user=operator).actions == [Action.PE_ENABLE, Action.T_ENABLE]


def test_a_pair_no_grant_covers_is_a_form_error_and_nothing_is_written(
    client, operator, cluster, us1, narrowed
):
    client.force_login(operator)
    before = row_counts()
    response = client.post(
        reverse("set_action"),
        {
            "action": "2",
            "cluster": str(us1.pk),
            "cids": "C1",
            "token": TOKEN,
            "idempotency_key": "k1",
        },
    )
    assert response.status_code == 200
    assert "jobs/set_action.html" in [t.name for t in response.templates]
    assert response.context["form"].non_field_errors() == [
        "You may not run PE-Enable on cluster us1: no run grant covers it."
    ]
    assert row_counts() == before


def test_a_user_without_any_grant_sees_why_instead_of_a_form(client, operator, operators):
    RunGrant.objects.filter(group=operators).delete()
    client.force_login(operator)
    page = client.get(reverse("set_action")).content.decode()
    assert 'id="set-action-no-grant"' in page
    assert 'id="set-action-form"' not in page


def test_a_grant_withdrawn_after_the_review_refuses_the_confirmation(
    client, operator, cluster, operators
):
    client.force_login(operator)
    review = client.post(
        reverse("set_action"),
        {
            "action": "1",
            "cluster": str(cluster.pk),
            "cids": "C1",
            "token": TOKEN,
            "idempotency_key": "k2",
        },
    )
    RunGrant.objects.filter(group=operators).delete()
    run_grant_create(group=operators, cluster=cluster, action=Action.PE_DIRECT)
    before = row_counts()
    response = confirm_review(client, review)
    assert response.status_code == 200
    assert "no run grant covers it" in " ".join(response.context["form"].non_field_errors())
    assert row_counts() == before


def test_a_retry_on_a_cluster_no_longer_granted_is_refused(client, operator, cluster, us1):
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
    job.refresh_from_db()
    operators = Group.objects.get(name="Operators")
    RunGrant.objects.filter(group=operators).delete()
    run_grant_create(group=operators, cluster=us1)
    client.force_login(operator)
    before = row_counts()
    with pytest.raises(NotGranted, match="Trans-Begin on cluster eu1"):
        job_retry(job=job, user=operator, token=TOKEN)
    response = client.post(
        reverse("job_retry", args=[job.pk]), {"retry_token": TOKEN, "idempotency_key": "r1"}
    )
    assert response.status_code == 400
    assert "no run grant covers it" in response.content.decode()
    assert row_counts() == before


def test_set_action_refuses_what_no_grant_covers_in_one_line(
    operator, cluster, operators, monkeypatch
):
    monkeypatch.setenv("TMS_TOKEN", TOKEN)
    RunGrant.objects.filter(group=operators).delete()
    before = row_counts()
    with pytest.raises(CommandError) as refused:
        call_command(
            "set_action",
            "--user",
            "op1",
            "--cluster",
            "eu1",
            "--action",
            "PE-Direct",
            "--cids",
            "C1",
            stdout=io.StringIO(),
        )
    assert str(refused.value) == (
        "You may not run PE-Direct on cluster eu1: no run grant covers it."
    )
    assert refused.value.returncode == 3
    assert row_counts() == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_grant_asked_for_at_once_is_made_once(cluster):
    group = Group.objects.get(name="Operators")

    def grant(n: int) -> RunGrant:
        return run_grant_create(group=group, cluster=cluster, action=Action.PE_DIRECT)

    made, errors = run_concurrently(grant)
    assert len(made) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(error, DuplicateGrant) for error in errors), errors
    assert RunGrant.objects.filter(cluster=cluster).count() == 1
    assert AuditEntry.objects.filter(event=AuditEntry.Event.RUN_GRANT_CREATED).count() == 1
