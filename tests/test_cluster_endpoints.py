"""Where a token may be sent: a cluster's endpoint is checked wherever a cluster is written."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from model_bakery import baker

from jobs.models import Cluster
from tests.admin_helpers import make_superuser
from tests.helpers import row_counts

ADD = reverse("admin:jobs_cluster_add")


def check(base_url: str = "http://127.0.0.1:9100", action_path: str = "/api/set_action"):
    Cluster(name="new", base_url=base_url, action_path=action_path).full_clean()


def refusal(**fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as refused:
        check(**fields)
    return refused.value.message_dict


@pytest.mark.parametrize(
    ("action_path", "message"),
    [
        ("@127.0.0.1:18100/x", "must start with /"),
        ("api/set_action", "must start with /"),
        ("//127.0.0.2:18100/x", "may not start with //"),
        ("/x@127.0.0.2/y", "may not hold @"),
        ("/x\\y", "may not hold @ or \\"),
        ("/redirect?to=http://127.0.0.2/", "may not hold a scheme"),
        ("/api/../admin", "may not hold . or .. segments"),
        ("/api/./x", "may not hold . or .. segments"),
        ("/..", "may not hold . or .. segments"),
        ("/api#x", "may not hold a fragment"),
        ("/api set", "may not hold spaces"),
        ("/api\r\nHost: x", "may not hold spaces or control characters"),
    ],
)
def test_an_action_path_that_could_leave_the_base_url_is_refused(db, action_path, message):
    errors = refusal(action_path=action_path)
    assert any(message in error for error in errors["action_path"]), errors


@pytest.mark.parametrize("action_path", ["/api/set_action", "/v2/set-action?format=json", "/"])
def test_ordinary_action_paths_are_accepted(db, action_path):
    check(action_path=action_path)


def test_the_reported_path_trick_is_refused_with_an_allowed_host(db, settings):
    settings.TMS_ALLOWED_CLUSTER_HOSTS = ["allowed.example"]
    errors = refusal(base_url="http://allowed.example", action_path="@127.0.0.1:18100/x")
    assert "action_path" in errors


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://user:pw@127.0.0.1:9100", "may not hold a user name or password"),
        ("http://user@127.0.0.1:9100", "may not hold a user name or password"),
        ("http://127.0.0.1:9100?x=1", "may not hold a query"),
        ("http://127.0.0.1:9100#x", "may not hold a query"),
        ("http://127.0.0.1:port", "must name a valid host and port"),
        ("http://169.254.169.254", "link-local or cloud metadata"),
        ("http://169.254.10.1:8080/api", "link-local or cloud metadata"),
        ("http://[fe80::1]:9100", "link-local or cloud metadata"),
        ("http://[fd00:ec2::254]", "link-local or cloud metadata"),
        ("http://[::ffff:169.254.169.254]", "link-local or cloud metadata"),
    ],
)
def test_a_base_url_that_leaks_or_reaches_metadata_is_refused(db, base_url, message):
    errors = refusal(base_url=base_url)
    assert any(message in error for error in errors["base_url"]), errors


def test_link_local_clusters_only_when_explicitly_allowed(db, settings):
    settings.TMS_ALLOW_LINK_LOCAL_CLUSTERS = True
    check(base_url="http://169.254.169.254")


@pytest.mark.parametrize(
    ("base_url", "action_path"),
    [
        ("http://127.0.0.1:9100", "/api/set_action"),
        ("http://127.0.0.1:9100/", "/api/set_action"),
        ("HTTP://127.0.0.1:9100", "/api/set_action"),
        ("http://127.0.0.1:9100", "/api//set_action/"),
        ("http://127.0.0.1:9100/api", "/set_action"),
    ],
)
def test_a_second_active_cluster_at_the_same_endpoint_is_refused(db, base_url, action_path):
    baker.make(Cluster, name="local", base_url="http://127.0.0.1:9100")
    with pytest.raises(ValidationError) as refused:
        Cluster(name="copy", base_url=base_url.lower(), action_path=action_path).full_clean()
    assert "already calls this endpoint" in str(refused.value)


def test_the_same_endpoint_is_allowed_when_one_of_the_two_is_inactive(db):
    baker.make(Cluster, name="old", base_url="http://127.0.0.1:9100", is_active=False)
    Cluster(name="new", base_url="http://127.0.0.1:9100").full_clean()
    baker.make(Cluster, name="new", base_url="http://127.0.0.1:9100")
    Cluster(name="parked", base_url="http://127.0.0.1:9100", is_active=False).full_clean()


def test_the_admin_refuses_the_path_trick_and_writes_nothing(client, db):
    client.force_login(make_superuser())
    before = row_counts()
    response = client.post(
        ADD,
        {
            "name": "sneaky",
            "base_url": "http://127.0.0.1:9100",
            "action_path": "@127.0.0.2:18100/x",
            "timeout_seconds": 30,
            "max_cids_per_request": 500,
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "The action path must start with /" in response.content.decode()
    assert row_counts() == before
