"""The Notifications page: a signed-in user chooses what they are e-mailed about, sets the
address they are e-mailed at (used once confirmed by the link sent to it), and sees the
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
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from audit.services import client_ip
from jobs.models import Job
from notifications.email_change import (
    email_change_confirm,
    email_change_read,
    email_change_request,
)
from notifications.forms import EmailChangeForm, NotificationPreferenceForm
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
    return _page(request, form=form, email_form=EmailChangeForm(), approvals=approvals)


def _page(request: HttpRequest, *, form, email_form, approvals) -> HttpResponse:
    preference = form.preference
    context = {
        "form": form,
        "email_form": email_form,
        "pending_email": preference.pending_email,
        "approvals": approvals,
        "mail_enabled": settings.TMS_MAIL_ENABLED,
        "notices": _recent_notices(request.user),
    }
    failed = form.errors or email_form.errors
    return render(request, "notifications/preferences.html", context, status=400 if failed else 200)


@never_cache
@login_required
@require_POST
def notification_email_change(request: HttpRequest) -> HttpResponse:
    """Ask for a new address: a link is sent to it, and the page says so; a refused address
    shows the page with the error (400) and nothing is written."""
    email_form = EmailChangeForm(request.POST)
    if email_form.is_valid():
        try:
            address = email_change_request(
                user=request.user,
                address=email_form.cleaned_data["email"],
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            email_form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"A confirmation link was sent to {address}. E-mails go on to your current "
                "address until you follow it.",
            )
            return redirect("notification_preferences")
    preference = preference_for(request.user)
    approvals = approvals_offered(request.user)
    form = NotificationPreferenceForm(preference=preference, approvals=approvals)
    return _page(request, form=form, email_form=email_form, approvals=approvals)


@never_cache
@login_required
@sensitive_post_parameters("token")
def notification_email_confirm(request: HttpRequest) -> HttpResponse:
    """The confirmation link's page: GET shows the address it sets and a Confirm button;
    POST sets it. A link expired, altered, of another user or already used is refused with
    why (400), and nothing is written."""
    token = (
        request.POST.get("token", "") if request.method == "POST" else request.GET.get("token", "")
    )
    try:
        if request.method == "POST":
            address = email_change_confirm(
                user=request.user, token=token, ip_address=client_ip(request)
            )
        else:
            address = email_change_read(user=request.user, token=token)
    except ValidationError as exc:
        context = {"error": " ".join(exc.messages)}
        return render(request, "notifications/confirm_email.html", context, status=400)
    if request.method == "POST":
        messages.success(request, f"Confirmed: e-mails now go to {address}.")
        return redirect("notification_preferences")
    context = {"address": address, "token": token}
    return render(request, "notifications/confirm_email.html", context)
