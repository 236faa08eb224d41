from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from model_bakery import baker


@pytest.fixture
def operator(db):
    user = baker.make("auth.User", username="op1")
    user.groups.add(Group.objects.get(name="Operators"))
    return user


@pytest.fixture
def cluster(db):
    return baker.make("jobs.Cluster", name="eu1", base_url="http://127.0.0.1:9100")
