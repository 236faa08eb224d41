"""Schedules: the list with each one's next run in its own zone, making one from a saved Set
Action, and its page: the next runs in local time and UTC, what each past occurrence did (a
live region), pausing and resuming it, and where the approval of its version stands, with
the Approve button for its approvers (who may open the page to approve, though it is not
theirs)."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from audit.services import client_ip
from jobs.models import ClusterCredential
from lib.recurrence import RecurrenceError, zone
from schedules.forms import ScheduleForm
from schedules.models import Schedule
from schedules.services import (
    VersionApproval,
    may_approve,
    may_manage,
    schedule_approval_state,
    schedule_approve,
    schedule_create,
    schedule_delete,
    schedule_pause,
    schedule_resume,
)
from schedules.views.common import PER_PAGE, add_errors, sees_everyone, visible_schedules
from schedules.views.upcoming import next_run, upcoming

# The service's argument names that the form calls otherwise.
RENAMED = {
    "grace_seconds": "grace_minutes",
    "saved_set_action.action": "saved_set_action",
    "saved_set_action.cluster": "saved_set_action",
    "saved_set_action.cids": "saved_set_action",
}
# How often the page asks whether its occurrences changed.
POLL = "every 5s"


def state(schedule: Schedule, next_local) -> str:
    """The schedule's state in one word."""
    if schedule.paused:
        return "paused"
    if next_local is None:
        return "ended"
    return "active"


@never_cache
@login_required
def schedule_list(request: HttpRequest) -> HttpResponse:
    schedules = visible_schedules(request.user).order_by("-created_at", "-pk")
    page = Paginator(schedules, PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    for schedule in page:
        schedule.next_local, schedule.broken = next_run(schedule, after=now)
        schedule.state = state(schedule, schedule.next_local)
    context = {"page": page, "everyone": sees_everyone(request.user)}
    return render(request, "schedules/schedule_list.html", context)


@never_cache
@login_required
@permission_required("jobs.run_set_action", raise_exception=True)
def schedule_new(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST or None, user=request.user)
    chosen = request.GET.get("saved", "")
    # ?saved=<id>: the saved Set Action whose page led here (any other value is ignored).
    mine = form.fields["saved_set_action"].queryset
    if chosen.isascii() and chosen.isdigit() and len(chosen) < 10 and mine.filter(pk=int(chosen)):
        form.initial["saved_set_action"] = int(chosen)
    if request.method == "POST" and form.is_valid():
        # A preset's rule is the form's own making: a refusal of it goes at the top.
        advanced = form.cleaned_data["repeat"] == "rrule"
        rename = {**RENAMED, "rrule": "rrule" if advanced else "__all__"}
        try:
            schedule = schedule_create(
                user=request.user, ip_address=client_ip(request), **form.scheduling()
            )
        except (ValidationError, PermissionDenied) as exc:
            add_errors(form, exc, rename)
        else:
            messages.success(request, "Scheduled.")
            return redirect("schedule_detail", pk=schedule.pk)
    return render(request, "schedules/schedule_form.html", {"form": form})


def _occurrences(request: HttpRequest, schedule: Schedule, tz) -> dict:
    rows = schedule.occurrences.select_related("job").order_by("-occurs_at")
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    for occurrence in page:
        occurrence.local = occurrence.occurs_at.astimezone(tz) if tz else None
    shown = [(o.pk, o.state, o.job_id, o.batch_id) for o in page]
    version = hashlib.sha256(repr([shown, schedule.paused]).encode()).hexdigest()[:16]
    query = {"part": "occurrences", "page": page.number, "v": version}
    return {
        "occurrences": page,
        "occurrences_version": version,
        "occurrences_refresh_url": reverse("schedule_detail", args=[schedule.pk])
        + "?"
        + urlencode(query),
    }


def _viewable(user, pk: int) -> tuple[Schedule, VersionApproval]:
    """The schedule, if `user` may see it (theirs, or they see everyone's) or approves its
    runs (a member of the covering rule's group); 404 alike otherwise. With the state of the
    approval of its version."""
    schedule = visible_schedules(user).filter(pk=pk).first()
    if schedule is not None:
        return schedule, schedule_approval_state(schedule)
    schedule = get_object_or_404(
        Schedule.objects.select_related("owner", "saved_set_action", "saved_set_action__cluster"),
        pk=pk,
    )
    approval = schedule_approval_state(schedule)
    if not (approval.needed and user.groups.filter(name=approval.group).exists()):
        raise Http404
    return schedule, approval


@never_cache
@login_required
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The schedule's page; ?part=occurrences its live region (204 until it changed)."""
    schedule, approval = _viewable(request.user, pk)
    now = timezone.now()
    try:
        tz = zone(schedule.timezone)
        runs, broken = upcoming(schedule, after=now), ""
    except RecurrenceError as exc:
        tz, runs, broken = None, [], str(exc)
    context = {
        "schedule": schedule,
        "saved": schedule.saved_set_action,
        "runs": runs,
        "broken": broken,
        "live": not schedule.paused and bool(runs),
        "poll": POLL,
        "may_manage": may_manage(request.user, schedule.owner_id),
        "approval": approval,
        "may_approve": may_approve(request.user, schedule, approval),
        "no_credential": schedule.saved_set_action.cluster_id is not None
        and not ClusterCredential.objects.filter(
            cluster=schedule.saved_set_action.cluster_id
        ).exists(),
        **_occurrences(request, schedule, tz),
    }
    if request.GET.get("part") == "occurrences":
        if request.GET.get("v") == context["occurrences_version"]:
            return HttpResponse(status=204)
        return render(request, "schedules/_occurrences.html", context)
    return render(request, "schedules/schedule_detail.html", context)


def _pause_or_resume(request: HttpRequest, pk: int, *, pause: bool) -> HttpResponse:
    schedule = get_object_or_404(visible_schedules(request.user), pk=pk)
    service = schedule_pause if pause else schedule_resume
    changed = service(schedule=schedule, user=request.user, ip_address=client_ip(request))
    if pause:
        done = "Paused: it does not run until resumed." if changed else "It was paused already."
        messages.success(request, done)
    else:
        messages.success(request, "Resumed." if changed else "It was not paused.")
    return redirect("schedule_detail", pk=schedule.pk)


@never_cache
@login_required
@require_POST
def schedule_pause_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _pause_or_resume(request, pk, pause=True)


@never_cache
@login_required
@require_POST
def schedule_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _pause_or_resume(request, pk, pause=False)


@never_cache
@login_required
@require_POST
def schedule_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete it and the records of its past runs; the jobs it made stay."""
    schedule = get_object_or_404(visible_schedules(request.user), pk=pk)
    schedule_delete(schedule=schedule, user=request.user, ip_address=client_ip(request))
    messages.success(request, f"Deleted schedule {pk}; the jobs it made stay.")
    return redirect("schedule_list")


@never_cache
@login_required
@require_POST
def schedule_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve the version of the schedule the approver saw (the form's `version`)."""
    schedule, _approval = _viewable(request.user, pk)
    version = request.POST.get("version", "")
    if not (version.isascii() and version.isdigit() and len(version) < 10):
        messages.error(request, "Approve the version shown on the page: reload it and try again.")
        return redirect("schedule_detail", pk=schedule.pk)
    try:
        state = schedule_approve(
            schedule=schedule,
            user=request.user,
            version=int(version),
            ip_address=client_ip(request),
        )
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if state.approved:
            messages.success(request, f"Approved: version {state.version} runs as scheduled.")
        else:
            more = state.required - len(state.approvers)
            messages.success(request, f"Approved; {more} more approver(s) of {state.group} needed.")
    return redirect("schedule_detail", pk=schedule.pk)
