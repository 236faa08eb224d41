"""The admin index in the operators' words: a line for every app and every model saying what it
is for (tmsdash/templatetags/admin_index.py)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.admin_helpers import make_superuser
from tmsdash.templatetags.admin_index import APPS, MODELS


def test_every_app_and_model_of_the_admin_is_described():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert set(MODELS) == registered
    assert set(APPS) == {label.split(".")[0] for label in registered}


@pytest.mark.django_db
def test_the_index_and_an_apps_index_show_the_descriptions(client):
    client.force_login(make_superuser())
    page = client.get(reverse("admin:index")).content.decode()
    assert "Sign-in lockouts: failed sign-in attempts and locked accounts." in page
    # Every model listed (those that are not on the index are left out by Django) says it.
    assert page.count('class="model-purpose"') == page.count('<tr class="model-') > 20
    assert page.count('class="app-purpose"') == len(APPS)
    # The failed jobs' front door stays first.
    assert page.index('id="failed-jobs-door"') < page.index('class="app-purpose"')
    jobs = client.get(reverse("admin:app_list", args=["jobs"])).content.decode()
    assert "Who may run which action on which cluster." in jobs
    assert jobs.count('class="app-purpose"') == 1
