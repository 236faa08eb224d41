"""The Notifications page: a signed-in user chooses what they are e-mailed about, and sees the
e-mails they were last sent."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from audit.services import client_ip
from jobs.models import Job
from notifications.forms import NotificationPreferenceForm
from notifications.models import Notice
from notifications.preferences import approvals_offered, preference_for, preference_save

RECENT_NOTICES = 20


def _recent_notices(user) -> QuerySet[Notice]:
    """The user's latest e-mail notices, of the jobs and batches they may see now: one sent
    while they could see everyone's jobs names jobs that are no longer theirs to see."""
    notices = Notice.objects.filter(user=user, channel=Notice.Channel.EMAIL)
    if not user.has_perm("jobs.view_all_jobs"):
        visible = Job.objects.visible_to(user)
        notices = notices.filter(Q(job__isnull=True) | Q(job__in=visible)).filter(
            Q(batch_id__isnull=True)
            | Q(batch_id__in=visible.filter(batch_id__isnull=False).values("batch_id"))
        )
    return notices.only("event", "job_id", "batch_id", "state", "created_at")[:RECENT_NOTICES]


@never_cache
@login_required
def notification_preferences(request: HttpRequest) -> HttpResponse:
    """The user's preferences, saved by POST and shown again by a redirect; a refused POST
    shows the form with its errors (400)."""
    preference = preference_for(request.user)
    data = request.POST if request.method == "POST" else None
    approvals = approvals_offered(request.user)
    form = NotificationPreferenceForm(data, preference=preference, approvals=approvals)
    if form.is_valid():
        try:
            preference_save(user=request.user, ip_address=client_ip(request), **form.cleaned_data)
        except ValidationError as exc:
            # The form's fields bear the service's argument names.
            form.add_error(None, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("notification_preferences")
    context = {
        "form": form,
        "approvals": approvals,
        "mail_enabled": settings.TMS_MAIL_ENABLED,
        "notices": _recent_notices(request.user),
    }
    return render(
        request, "notifications/preferences.html", context, status=400 if form.errors else 200
    )
