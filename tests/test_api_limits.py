"""Per-token rate limits: separate for submits and reads, counted in the database (so they
hold across processes and hosts), answered 429 with Retry-After."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from api.models import ApiRateWindow
from api.throttles import rate_prune, rate_take
from api.tokens import token_create
from tests.helpers import THREADS, make_user, run_concurrently

CLUSTERS = "/api/v1/clusters"


def test_reads_and_submits_have_budgets_of_their_own_per_token(client, operator, settings):
    settings.TMS_API_READS_PER_MINUTE = 2
    settings.TMS_API_SUBMITS_PER_MINUTE = 1
    mine = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=operator, name='a').secret}"}
    other = token_create(user=make_user("op2", "Operators"), name="b").secret
    assert [client.get(CLUSTERS, **mine).status_code for _ in range(2)] == [200, 200]
    refused = client.get(CLUSTERS, **mine)
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Submits count apart from reads (this POST reaches the view, which takes none: 405).
    assert client.post(CLUSTERS, **mine).status_code == 405
    assert client.post(CLUSTERS, **mine).status_code == 429
    # Another token has its own budget.
    assert client.get(CLUSTERS, HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 200


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("limit", [5, THREADS])
def test_the_limit_is_exact_under_concurrent_requests(operator, limit):
    """Within the limit every request passes, the window's first one included however they
    race to create its row; beyond it, exactly the excess is refused."""
    token = token_create(user=operator, name="race").token
    now = timezone.now()
    results, errors = run_concurrently(lambda n: rate_take(token.pk, "read", limit, now))
    assert errors == []
    assert sorted(wait == 0 for wait in results) == [False] * (THREADS - limit) + [True] * limit
    assert ApiRateWindow.objects.get().count == limit


def test_a_new_minute_starts_a_new_budget_and_old_ones_are_pruned(operator):
    token = token_create(user=operator, name="x").token
    start = timezone.now().replace(second=30, microsecond=0)
    assert rate_take(token.pk, "read", 1, start) == 0
    assert rate_take(token.pk, "read", 1, start) == 30
    later = start + dt.timedelta(minutes=1)
    assert rate_take(token.pk, "read", 1, later) == 0
    assert rate_prune(later + dt.timedelta(minutes=1)) == 2
