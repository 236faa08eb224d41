"""The operator's recent jobs: a live region of the Set Action page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from jobs.models import Job
from jobs.views.common import live_version

RECENT = 5


def recent_context(user) -> dict:
    jobs = list(Job.objects.filter(user=user).select_related("cluster")[:RECENT])
    return {
        "recent": jobs,
        "live": any(job.status == Job.Status.IN_PROGRESS for job in jobs),
        "version": live_version(jobs),
    }


@never_cache
@login_required
def recent_jobs(request: HttpRequest) -> HttpResponse:
    """The region alone; 204 while what it shows (v) has not changed."""
    context = recent_context(request.user)
    if request.GET.get("v") == context["version"]:
        return HttpResponse(status=204)
    return render(request, "jobs/_recent_jobs.html", context)
