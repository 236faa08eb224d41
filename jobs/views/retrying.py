"""Retrying a job or a batch's failed parts from its page: the retry form is reviewed first
(what would be sent, where, and who must approve it), then confirmed. The review carries the
token sealed (jobs.tokens.token_seal) and the idempotency key, so that a confirmation sent
twice makes its jobs once; a confirmation refused shows the page's retry form again, without
the token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_variables

from audit.services import client_ip
from jobs.forms import CLEARED_NOTICE, RetryConfirmForm, RetryForm
from jobs.models import Job
from jobs.services import NotGranted, RetryPreview
from jobs.tokens import token_seal
from jobs.views.common import add_service_errors, jobs_page

# How many of the customer IDs the review names.
SHOWN_CIDS = 10


@dataclass(frozen=True)
class Retrying:
    """What a retry page needs: the job retried (a batch's first failed part), the services
    that preview and send the retry, where Back goes, and what the review calls the jobs."""

    job: Job | None
    preview: Callable[..., RetryPreview]
    send: Callable[..., list[Job]]
    back_url: str
    retried: str
    done: str


def _service_errors(form, call: Callable, **kwargs):
    """`call(**kwargs)`, or None with its refusal put on `form`."""
    try:
        return call(**kwargs)
    except ValidationError as exc:
        add_service_errors(form, exc, rename={"token": "retry_token"})
    except NotGranted as exc:
        form.add_error(None, str(exc))
    return None


@sensitive_variables()
def retry_step(request: HttpRequest, retrying: Retrying) -> tuple[HttpResponse | None, RetryForm]:
    """Answer a POST to a retry URL: a retry form makes its review, a review's confirmation
    sends the retry. Returns the response, or None and the retry form with its errors, for
    the page to show again."""
    if request.POST.get("step") == "confirm":
        return _confirm(request, retrying)
    form = RetryForm(request.POST, user=request.user, job=retrying.job)
    if not form.is_valid():
        return None, form
    checked = form.checked()
    preview = _service_errors(form, retrying.preview, user=request.user, **checked)
    if preview is None:
        return None, form
    key, token = checked["idempotency_key"], checked["token"]
    initial = {
        "idempotency_key": key,
        "confirm_unknown": checked["confirm_unknown"],
        "confirm_again": checked["confirm_again"],
        # With the stored credential there is no token to carry.
        "seal": token_seal(token, user_id=request.user.pk, key=key) if token else "",
    }
    context = {
        "preview": preview,
        "action_label": Job.Action(preview.action).label,
        "retried": retrying.retried,
        "back_url": retrying.back_url,
        "confirm": RetryConfirmForm(initial=initial, user=request.user, job=retrying.job),
        "stored_credential": checked["stored_credential"],
        "shown": preview.cids[:SHOWN_CIDS],
        "more": max(len(preview.cids) - SHOWN_CIDS, 0),
    }
    return render(request, "jobs/retry_review.html", context), form


def _confirm(request: HttpRequest, retrying: Retrying) -> tuple[HttpResponse | None, RetryForm]:
    confirm = RetryConfirmForm(request.POST, user=request.user, job=retrying.job)
    valid = confirm.is_valid()
    again = RetryForm(
        confirm.again(), user=request.user, job=retrying.job, token_missing=CLEARED_NOTICE
    )
    again.is_valid()
    if not valid:
        for error in confirm.errors.get("seal", []):
            again.add_error(None, error)
        return None, again
    jobs = _service_errors(
        again, retrying.send, user=request.user, ip_address=client_ip(request), **confirm.checked()
    )
    if jobs is None:
        return None, again
    messages.success(request, retrying.done)
    return redirect(jobs_page(jobs)), again
