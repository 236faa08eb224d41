"""An admin bulk action with a selection no row could have (a forged `_selected_action`): the
list again with a message, never a 500, and nothing written, on every registered admin."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.test import Client, RequestFactory
from django.urls import reverse

from lib.admin import CheckedSelectionMixin
from tests.admin_helpers import make_superuser
from tests.helpers import row_counts

# Digits int() refuses, ids no column holds, NUL, other types' spellings.
FORGED = ["²", "99999999999999999999999", "-99999999999999999999999", "1\x00", "1.5", "[]", ""]


def actions_of_every_admin(user) -> list[tuple[type, str]]:
    request = RequestFactory().get("/")
    request.user = user
    return [
        (model, name)
        for model, model_admin in admin.site._registry.items()
        for name in model_admin.get_actions(request)
    ]


def test_every_registered_admin_checks_its_selection():
    unchecked = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, CheckedSelectionMixin)
    ]
    assert not unchecked


@pytest.mark.django_db
def test_a_forged_selection_is_refused_with_a_message_and_writes_nothing(cluster):
    superuser = make_superuser()
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    checked = actions_of_every_admin(superuser)
    # Each of ours, and Django's and django-axes' own.
    assert {model._meta.app_label for model, _ in checked} >= {"auth", "axes", "jobs", "api"}
    failures = []
    for model, action in checked:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for value in FORGED:
            before = row_counts()
            for extra in ({}, {"post": "yes"}):
                data = {"action": action, "index": "0", "_selected_action": [value], **extra}
                response = client.post(url, data)
                shown = [str(m) for m in get_messages(response.wsgi_request)]
                if response.status_code != 302 or response["Location"] != url:
                    failures.append((action, url, repr(value), response.status_code))
                elif not any("no row of" in message for message in shown):
                    failures.append((action, url, repr(value), shown))
            if row_counts() != before:
                failures.append((action, url, repr(value), "rows written"))
    assert not failures, "\n".join(map(str, failures))
