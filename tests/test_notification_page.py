"""The Notifications page: each user chooses what they are e-mailed about (their own jobs'
failures by default; everyone's, narrowed to clusters or actions, for those who may see every
job), audited when it changes, and sees the e-mails they were last sent."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster, Job
from notifications import preferences
from notifications.events import notices_record_job_end
from notifications.models import Notice, NotificationPreference
from notifications.preferences import ALL_JOBS_REFUSED, preference_for, preference_save
from tests.e2e import make_job
from tests.helpers import make_user, row_counts

PAGE = "/accounts/notifications/"
CHANGED = AuditEntry.Event.NOTIFICATIONS_CHANGED
DEFAULTS = {"own_jobs": "on"}


@pytest.fixture
def auditor(db):
    return make_user("aud1", "Auditors", email="aud1@example.test")


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def as_auditor(client, auditor):
    client.force_login(auditor)
    return client


def checked(html: str, name: str, value: object = None) -> bool:
    """Whether the page's checkbox `name` (with `value`, for a list of them) is ticked."""
    value_attr = rf'[^>]*value="{value}"' if value is not None else ""
    tag = re.search(rf'<input type="checkbox" name="{name}"{value_attr}[^>]*>', html)
    assert tag, f"no checkbox {name} {value} on the page"
    return " checked" in tag[0]


def notice(user, *, job=None, batch_id=None, event="job.failed", ago=timedelta(0), **fields):
    return Notice.objects.create(
        event_id=uuid.uuid4(),
        event=event,
        channel=Notice.Channel.EMAIL,
        user=user,
        job=job,
        batch_id=batch_id,
        payload={"url": "https://mail-link.example.test/somewhere/"},
        created_at=timezone.now() - ago,
        **fields,
    )


def make_cluster(name: str, **fields) -> Cluster:
    return baker.make(Cluster, name=name, base_url=f"https://tms-{name}.example.net", **fields)


def words(response) -> str:
    """The page's HTML with each run of white space one space, as a reader meets its text."""
    return " ".join(response.content.decode().split())


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# The page


def test_the_page_is_for_signed_in_users_only(client, db):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.post(PAGE, {"successes": "on"}).status_code == 302
    assert NotificationPreference.objects.count() == 0


def test_the_top_bar_links_to_the_page(as_operator):
    html = as_operator.get(reverse("job_list")).content.decode()
    assert f'<a href="{PAGE}">Notifications</a>' in html


def test_a_user_without_preferences_sees_the_defaults_and_gets_no_row(as_operator):
    counts = row_counts()
    response = as_operator.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert checked(html, "own_jobs")
    assert not checked(html, "successes")
    assert row_counts() == counts


def test_everyones_jobs_are_offered_only_to_users_who_may_see_them(
    client, operator, auditor, cluster
):
    make_cluster("retired", is_active=False)
    client.force_login(operator)
    html = client.get(PAGE).content.decode()
    assert "Everyone's jobs" not in html
    assert 'name="all_jobs"' not in html and 'name="clusters"' not in html

    client.force_login(auditor)
    html = client.get(PAGE).content.decode()
    assert "<legend>Everyone's jobs</legend>" in html
    assert not checked(html, "all_jobs")
    assert not checked(html, "clusters", cluster.pk)
    assert "retired" not in html
    for action in Job.Action:
        assert not checked(html, "actions", action.value)
        assert action.label in html


def test_saving_creates_the_row_and_one_audit_entry(as_operator, operator):
    response = as_operator.post(PAGE, {"successes": "on"})
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert messages_of(response) == ["Saved."]
    preference = NotificationPreference.objects.get(user=operator)
    assert (preference.own_jobs, preference.all_jobs, preference.successes) == (
        False,
        False,
        True,
    )
    entry = AuditEntry.objects.get(event=CHANGED)
    assert (entry.event, entry.actor, entry.ip_address) == (CHANGED, operator, "127.0.0.1")
    assert entry.details == {
        "before": {"own_jobs": True, "successes": False},
        "after": {"own_jobs": False, "successes": True},
    }

    html = as_operator.get(PAGE).content.decode()
    assert not checked(html, "own_jobs")
    assert checked(html, "successes")


def test_an_auditor_subscribes_to_everyones_jobs_on_chosen_clusters_and_actions(
    as_auditor, auditor, cluster
):
    other = make_cluster("us2")
    response = as_auditor.post(
        PAGE,
        {**DEFAULTS, "all_jobs": "on", "clusters": [other.pk, cluster.pk], "actions": ["3", "1"]},
    )
    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=auditor)
    assert preference.all_jobs
    assert set(preference.clusters.all()) == {cluster, other}
    assert preference.actions == [1, 3]
    entry = AuditEntry.objects.get(event=CHANGED)
    assert entry.details == {
        "before": {"all_jobs": False, "clusters": [], "actions": []},
        "after": {"all_jobs": True, "clusters": ["eu1", "us2"], "actions": [1, 3]},
    }

    html = as_auditor.get(PAGE).content.decode()
    assert checked(html, "all_jobs")
    assert checked(html, "clusters", cluster.pk) and checked(html, "clusters", other.pk)
    assert checked(html, "actions", 1) and checked(html, "actions", 3)
    assert not checked(html, "actions", 2)

    # Narrowed again: only what changed is recorded.
    as_auditor.post(PAGE, {**DEFAULTS, "all_jobs": "on", "clusters": [cluster.pk], "actions": "1"})
    latest = AuditEntry.objects.filter(event=CHANGED).latest("pk")
    assert latest.details == {
        "before": {"clusters": ["eu1", "us2"], "actions": [1, 3]},
        "after": {"clusters": ["eu1"], "actions": [1]},
    }
    assert list(preference.clusters.all()) == [cluster]


def test_saving_the_defaults_without_a_row_writes_nothing(as_operator):
    counts = row_counts()
    response = as_operator.post(PAGE, DEFAULTS)
    assert response.status_code == 302
    assert messages_of(response) == ["Saved."]
    assert row_counts() == counts


def test_saving_what_is_saved_writes_nothing(as_auditor, auditor, cluster):
    fields = {"all_jobs": "on", "successes": "on", "clusters": [cluster.pk], "actions": ["2"]}
    as_auditor.post(PAGE, fields)
    assert AuditEntry.objects.filter(event=CHANGED).count() == 1
    updated_at = NotificationPreference.objects.get().updated_at
    counts = row_counts()
    response = as_auditor.post(PAGE, fields)
    assert response.status_code == 302
    assert row_counts() == counts
    assert NotificationPreference.objects.get().updated_at == updated_at


@pytest.mark.parametrize(
    "fields",
    [
        {"all_jobs": "on"},
        {"clusters": "CLUSTER"},
        {"actions": "2"},
    ],
)
def test_an_operator_asking_for_everyones_jobs_is_refused(as_operator, cluster, fields):
    fields = {k: cluster.pk if v == "CLUSTER" else v for k, v in fields.items()}
    counts = row_counts()
    response = as_operator.post(PAGE, {**DEFAULTS, **fields})
    assert response.status_code == 400
    html = response.content.decode()
    assert '<div class="form-errors" role="alert">' in html
    assert "Only users who may see everyone&#x27;s jobs can be e-mailed about them" in html
    assert row_counts() == counts


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"clusters": "999999"}, "clusters", "A cluster you chose is no longer offered"),
        ({"clusters": "99999999999999999999"}, "clusters", "A cluster you chose is no longer"),
        ({"clusters": "eu1"}, "clusters", "“eu1” is not a cluster."),
        ({"clusters": "RETIRED"}, "clusters", "A cluster you chose is no longer offered"),
        ({"actions": "6"}, "actions", "“6” is not an action."),
        ({"actions": "PE-Enable"}, "actions", "“PE-Enable” is not an action."),
        ({"actions": "\x00"}, "actions", "is not an action."),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(as_auditor, cluster, fields, field, error):
    retired = make_cluster("retired", is_active=False)
    fields = {k: retired.pk if v == "RETIRED" else v for k, v in fields.items()}
    counts = row_counts()
    response = as_auditor.post(PAGE, {**DEFAULTS, "all_jobs": "on", **fields})
    assert response.status_code == 400
    html = response.content.decode()
    errors = re.search(
        rf'<div class="field-errors" id="id_{field}_error" role="alert">.*?</div>', html
    )
    assert errors and error in errors[0]
    assert row_counts() == counts


def test_a_post_without_the_csrf_token_is_refused(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    counts = row_counts()
    assert client.post(PAGE, {"successes": "on"}).status_code == 403
    assert row_counts() == counts

    token = client.get(PAGE).cookies["csrftoken"].value
    response = client.post(PAGE, {"successes": "on", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert NotificationPreference.objects.get(user=operator).successes


def test_a_deactivated_cluster_stays_chosen_until_unticked(as_auditor, auditor, cluster):
    """Dropped from the choices, it would leave the list empty on the next save: every
    cluster."""
    as_auditor.post(PAGE, {"all_jobs": "on", "clusters": [cluster.pk]})
    Cluster.objects.filter(pk=cluster.pk).update(is_active=False)
    html = as_auditor.get(PAGE).content.decode()
    assert checked(html, "clusters", cluster.pk)
    assert "eu1 (inactive)" in html

    assert as_auditor.post(PAGE, {"all_jobs": "on", "clusters": [cluster.pk]}).status_code == 302
    assert list(NotificationPreference.objects.get().clusters.all()) == [cluster]
    as_auditor.post(PAGE, {"all_jobs": "on"})
    assert list(NotificationPreference.objects.get().clusters.all()) == []
    assert "eu1" not in as_auditor.get(PAGE).content.decode()


def test_a_user_who_lost_the_permission_clears_everyones_jobs_on_saving(client, cluster):
    former = make_user("former", "Operators")
    preference = NotificationPreference.objects.create(user=former, all_jobs=True, actions=[1])
    preference.clusters.set([cluster])
    client.force_login(former)
    assert 'name="all_jobs"' not in client.get(PAGE).content.decode()
    assert client.post(PAGE, DEFAULTS).status_code == 302
    preference.refresh_from_db()
    assert (preference.all_jobs, preference.actions) == (False, [])
    assert list(preference.clusters.all()) == []


# What the page says about e-mail


def test_the_page_says_when_this_server_sends_no_email(as_operator, settings):
    settings.TMS_MAIL_ENABLED = False
    html = words(as_operator.get(PAGE))
    assert 'id="mail-disabled"' in html
    assert "This server sends no e-mail:</strong> EMAIL_URL is not set." in html
    # The settings stay editable.
    assert 'id="notification-form"' in html
    assert as_operator.post(PAGE, {"successes": "on"}).status_code == 302
    assert NotificationPreference.objects.get().successes

    settings.TMS_MAIL_ENABLED = True
    html = as_operator.get(PAGE).content.decode()
    assert 'id="mail-disabled"' not in html
    assert "EMAIL_URL" not in html


def test_the_page_shows_the_accounts_address_or_says_there_is_none(as_operator, operator):
    html = words(as_operator.get(PAGE))
    assert 'id="no-address"' in html
    assert "no e-mail can be sent to you until you add one below and confirm it" in html
    assert 'id="mail-address"' not in html

    operator.email = "op1@example.test"
    operator.save()
    html = words(as_operator.get(PAGE))
    assert "E-mails go to <strong>op1@example.test</strong>" in html
    assert "You can change it below." in html
    assert 'id="no-address"' not in html
    # A new address is typed in a form of its own, confirmed by a link
    # (tests/test_notification_email_change.py).
    assert f'action="{reverse("notification_email_change")}"' in html


def test_an_email_address_posted_with_the_preferences_changes_nothing(as_operator, operator):
    as_operator.post(PAGE, {**DEFAULTS, "email": "attacker@example.test"})
    operator.refresh_from_db()
    assert operator.email == ""


# The e-mails sent lately


def test_the_list_shows_the_users_own_email_notices_newest_first(as_operator, operator, cluster):
    job = make_job(operator, cluster, Job.Status.FAILED)
    batch_id = uuid.uuid4()
    make_job(operator, cluster, Job.Status.SUCCESS, batch_id=batch_id, batch_seq=1)
    older = notice(operator, job=job, ago=timedelta(hours=1), state=Notice.State.SENT)
    newer = notice(operator, batch_id=batch_id, event="batch.ended", state=Notice.State.FAILED)
    someone = make_user("op2", "Operators")
    theirs = notice(someone, job=make_job(someone, cluster, Job.Status.FAILED))

    html = as_operator.get(PAGE).content.decode()
    rows = re.findall(r'<tr data-notice="([0-9a-f-]+)">(.*?)</tr>', html, re.S)
    assert [row[0] for row in rows] == [str(newer.pk), str(older.pk)]
    assert str(theirs.pk) not in html
    batch_row, job_row = rows[0][1], rows[1][1]
    assert "A batch ended" in batch_row and "Failed" in batch_row
    assert f'href="{reverse("batch_detail", args=[batch_id])}"' in batch_row
    assert "A job failed" in job_row and "Sent" in job_row
    assert f'href="{reverse("job_detail", args=[job.pk])}"' in job_row
    assert "<time datetime=" in job_row
    # Links lead to this server's pages, not to the address the e-mail carried.
    assert "mail-link.example.test" not in html


def test_the_list_holds_the_latest_twenty_email_notices_only(as_operator, operator, cluster):
    job = make_job(operator, cluster, Job.Status.FAILED)
    made = [notice(operator, job=job, ago=timedelta(minutes=n)) for n in range(22)]
    html = as_operator.get(PAGE).content.decode()
    shown = re.findall(r'<tr data-notice="([0-9a-f-]+)">', html)
    assert shown == [str(n.pk) for n in made[:20]]


def test_without_notices_the_list_says_so(as_operator):
    assert 'id="no-notices"' in as_operator.get(PAGE).content.decode()


def test_the_list_leaves_out_others_jobs_once_the_user_may_no_longer_see_them(
    client, operator, cluster
):
    """Sent while the user could see everyone's jobs, those notices name jobs that are no
    longer theirs to see."""
    former = make_user("former", "Operators")
    batch_id = uuid.uuid4()
    others_job = make_job(operator, cluster, Job.Status.FAILED)
    make_job(operator, cluster, Job.Status.FAILED, batch_id=batch_id, batch_seq=1)
    notice(former, job=others_job)
    notice(former, batch_id=batch_id, event="batch.ended")
    digest = notice(former, event=Notice.DIGEST)
    own = notice(former, job=make_job(former, cluster, Job.Status.FAILED))
    client.force_login(former)
    html = client.get(PAGE).content.decode()
    assert re.findall(r'<tr data-notice="([0-9a-f-]+)">', html) == [str(own.pk), str(digest.pk)]
    assert str(others_job.pk)[:8] not in html and str(batch_id)[:8] not in html


def test_an_auditor_sees_the_notices_of_everyones_jobs(as_auditor, auditor, operator, cluster):
    batch_id = uuid.uuid4()
    make_job(operator, cluster, Job.Status.FAILED, batch_id=batch_id, batch_seq=1)
    of_job = notice(auditor, job=make_job(operator, cluster, Job.Status.FAILED))
    of_batch = notice(auditor, batch_id=batch_id, event="batch.ended", ago=timedelta(1))
    html = as_auditor.get(PAGE).content.decode()
    assert re.findall(r'<tr data-notice="([0-9a-f-]+)">', html) == [
        str(of_job.pk),
        str(of_batch.pk),
    ]


# The service


def test_preference_for_gives_the_saved_row_or_unsaved_defaults(operator):
    default = preference_for(operator)
    assert default._state.adding
    assert (default.own_jobs, default.all_jobs, default.successes, default.actions) == (
        True,
        False,
        False,
        [],
    )
    NotificationPreference.objects.create(user=operator, own_jobs=False)
    saved = preference_for(operator)
    assert not saved._state.adding and not saved.own_jobs


@pytest.mark.parametrize("actions", [[9], [0], ["1"], [True], [1.0], [None]])
def test_the_service_refuses_unknown_actions(auditor, actions):
    counts = row_counts()
    with pytest.raises(ValidationError) as refused:
        preference_save(
            user=auditor,
            own_jobs=True,
            all_jobs=True,
            successes=False,
            clusters=[],
            actions=actions,
        )
    assert "actions" in refused.value.message_dict
    assert row_counts() == counts


@pytest.mark.parametrize(
    "asked",
    [{"all_jobs": True}, {"clusters": "CLUSTER"}, {"actions": [Job.Action.PE_DIRECT]}],
)
def test_the_service_refuses_everyones_jobs_to_users_who_may_not_see_them(operator, cluster, asked):
    arguments = {
        "own_jobs": True,
        "all_jobs": False,
        "successes": False,
        "clusters": [],
        "actions": [],
    }
    arguments |= {k: [cluster] if v == "CLUSTER" else v for k, v in asked.items()}
    counts = row_counts()
    with pytest.raises(ValidationError) as refused:
        preference_save(user=operator, **arguments)
    assert refused.value.messages == [ALL_JOBS_REFUSED]
    assert row_counts() == counts


def test_the_service_keeps_a_row_made_meanwhile_and_records_from_it(operator):
    """A delivery worker may have made the row (with the defaults) since the page was shown."""
    NotificationPreference.objects.create(user=operator)
    preference_save(
        user=operator, own_jobs=False, all_jobs=False, successes=False, clusters=[], actions=[]
    )
    assert NotificationPreference.objects.get().own_jobs is False
    assert AuditEntry.objects.get(event=CHANGED).details == {
        "before": {"own_jobs": True},
        "after": {"own_jobs": False},
    }


def test_a_row_made_after_the_first_look_is_changed_from_what_it_holds(operator, monkeypatch):
    """Another request (or a delivery worker) may make the row between this save's look for
    it and its write: the save then starts from that row, and records no change it did not
    make."""
    looks = []

    def racing(user):
        looks.append(user)
        if len(looks) == 1:
            NotificationPreference.objects.create(user=user, successes=True)
            return None
        return locked(user)

    locked = preferences._locked
    monkeypatch.setattr(preferences, "_locked", racing)
    preference_save(
        user=operator, own_jobs=True, all_jobs=False, successes=True, clusters=[], actions=[]
    )
    assert len(looks) == 2
    assert NotificationPreference.objects.get().successes
    assert not AuditEntry.objects.filter(event=CHANGED).exists()


# What the preferences do


@pytest.mark.parametrize(("own_jobs", "emails"), [(False, 0), (True, 1)])
def test_a_failed_job_emails_its_operator_as_the_page_was_set(
    as_operator, operator, cluster, settings, own_jobs, emails
):
    settings.TMS_MAIL_ENABLED = True
    operator.email = "op1@example.test"
    operator.save()
    # From the saved defaults: off is a change, on is saved as it was.
    as_operator.post(PAGE, {"own_jobs": "on"} if own_jobs else {"successes": ""})
    job = make_job(operator, cluster, Job.Status.FAILED)
    notices_record_job_end(job_id=job.pk, status=Job.Status.FAILED, reason=None)
    sent = Notice.objects.filter(channel=Notice.Channel.EMAIL, user=operator, job=job)
    assert sent.count() == emails
