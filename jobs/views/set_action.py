"""The Set Action page: the form that submits jobs, its review, and the operator's recent jobs.

A valid form shows a review of what would be submitted; nothing is written until the operator
confirms it. The review carries the form's fields in hidden inputs, the token sealed (see
jobs.tokens.token_seal), and the idempotency key unchanged, so that a confirmation sent twice
makes its jobs once. Back, or a confirmation that fails, shows the form again as it was typed,
without the token. A review names the customers that are busy (a job in progress on the
cluster holds them) and offers to run the free ones, with the same seal and key.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from audit.services import client_ip
from jobs.forms import CLEARED_NOTICE, SEAL_REFUSED, SetActionConfirmForm, SetActionForm
from jobs.models import Job
from jobs.services import (
    CustomerConflict,
    NotGranted,
    SubmitPreview,
    job_submit,
    job_submit_preview,
)
from jobs.tokens import token_seal
from jobs.views.common import add_service_errors, jobs_page

# How many of the customer IDs the review and a refusal name.
SHOWN_CIDS = 10
CARRIED = ("action", "cluster", "cids", "idempotency_key", "freeze_override_reason")
# Carried as the confirmation form's hidden `stored_credential`, back as the form's checkbox.
STORED = ("stored_credential", "use_stored_credential")


@never_cache
@sensitive_post_parameters("token", "seal")
@login_required
@permission_required("jobs.run_set_action", raise_exception=True)
def set_action(request: HttpRequest) -> HttpResponse:
    step = request.POST.get("step")
    if step == "confirm":
        return _confirm(request)
    if step == "back":
        return _form_again(request, token_missing=CLEARED_NOTICE)
    form = SetActionForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        # Errors about the customers belong next to where they came from.
        rename = {"cids": "csv_file"} if form.cleaned_data.get("csv_file") else {}
        try:
            preview = job_submit_preview(user=request.user, **form.submission())
        except ValidationError as exc:
            add_service_errors(form, exc, rename)
        except NotGranted as exc:
            form.add_error(None, str(exc))
        else:
            return _review(request, form, preview)
    return _form_page(request, form)


@sensitive_variables()
def _review(request: HttpRequest, form: SetActionForm, preview: SubmitPreview) -> HttpResponse:
    data = form.cleaned_data
    key = data["idempotency_key"]
    from_csv = bool(data.get("csv_file"))
    carried = {
        "action": preview.action,
        "cluster": preview.cluster.pk,
        # Back shows a CSV file's customers as typed ones: a file input cannot be filled in.
        "cids": "\n".join(preview.cids) if from_csv else data["cids"],
        "from_csv": from_csv,
        "idempotency_key": key,
        "stored_credential": bool(data.get("use_stored_credential")),
        # With the stored credential there is no token to carry.
        "seal": token_seal(data["token"], user_id=request.user.pk, key=key)
        if data["token"]
        else "",
        "freeze_override_reason": data.get("freeze_override_reason", ""),
    }
    return _review_page(request, carried, preview, token=data["token"] or None)


@sensitive_variables()
def _review_page(
    request: HttpRequest, carried: dict, preview: SubmitPreview, *, token: str | None
) -> HttpResponse:
    """The review of `preview`, its confirmation carrying `carried` (the token sealed). When
    some customers are busy it names them and offers to run the free ones only, with the
    same seal and key: dropping busy customers asks for no token again."""
    run = preview
    if preview.busy and preview.free:
        # What running the free ones would record: its jobs and approval, not the whole list's.
        run = job_submit_preview(
            user=request.user,
            action=preview.action,
            cluster=preview.cluster,
            cids=preview.free,
            token=token,
            stored_credential=carried["stored_credential"],
            idempotency_key=carried["idempotency_key"],
            freeze_override_reason=carried["freeze_override_reason"],
        )
    confirm = SetActionConfirmForm(
        initial={**carried, "cids": "\n".join(preview.free)} if preview.busy else carried,
        user=request.user,
    )
    back = SetActionConfirmForm(initial=carried, user=request.user)
    context = {
        "preview": run,
        "action_label": Job.Action(preview.action).label,
        "confirm": confirm,
        "back": back,
        "shown": run.cids[:SHOWN_CIDS],
        "more": max(len(run.cids) - SHOWN_CIDS, 0),
        "busy": preview.busy[:SHOWN_CIDS],
        "busy_count": len(preview.busy),
        "busy_more": max(len(preview.busy) - SHOWN_CIDS, 0),
        "free_count": len(preview.free),
        "from_csv": carried["from_csv"],
        "stored_credential": carried["stored_credential"],
        "approval_wait": timedelta(seconds=run.approval.ttl_seconds) if run.approval else None,
    }
    return render(request, "jobs/set_action_review.html", context)


def _confirm(request: HttpRequest) -> HttpResponse:
    confirm = SetActionConfirmForm(request.POST, user=request.user)
    if not confirm.is_valid():
        # The form again states what no longer holds (a cluster retired since the review);
        # a seal that does not open asks for the token.
        refused = "seal" in confirm.errors
        return _form_again(request, token_missing=SEAL_REFUSED if refused else CLEARED_NOTICE)
    try:
        jobs = job_submit(user=request.user, ip_address=client_ip(request), **confirm.submission())
    except CustomerConflict:
        # Customers became busy since the review: it is shown again, naming them, with the
        # same seal, so that running the free ones asks for no token again.
        return _review_again(request, confirm)
    except ValidationError as exc:
        return _form_again(request, token_missing=CLEARED_NOTICE, refusal=exc)
    except NotGranted as exc:
        # A grant withdrawn since the review.
        refusal = ValidationError(str(exc))
        return _form_again(request, token_missing=CLEARED_NOTICE, refusal=refusal)
    if jobs[0].status == Job.Status.PENDING_APPROVAL:
        messages.info(request, "Submitted for approval: nothing is sent until it is approved.")
    return redirect(jobs_page(jobs))


@sensitive_variables()
def _review_again(request: HttpRequest, confirm: SetActionConfirmForm) -> HttpResponse:
    """The review of a confirmation refused for busy customers, checked again now."""
    submission = confirm.submission()
    try:
        preview = job_submit_preview(user=request.user, **submission)
    except ValidationError as exc:
        return _form_again(request, token_missing=CLEARED_NOTICE, refusal=exc)
    except NotGranted as exc:
        return _form_again(request, token_missing=CLEARED_NOTICE, refusal=ValidationError(str(exc)))
    carried = {
        **{name: confirm.cleaned_data[name] for name in confirm.fields},
        "cluster": preview.cluster.pk,
    }
    return _review_page(request, carried, preview, token=submission["token"])


def _form_again(
    request: HttpRequest, *, token_missing: str, refusal: ValidationError | None = None
) -> HttpResponse:
    """The form as the operator typed it, without the token, and why it is shown again."""
    carried = {name: request.POST.get(name, "") for name in CARRIED}
    if request.POST.get(STORED[0]) == "True":
        carried[STORED[1]] = "on"
    form = SetActionForm(carried, user=request.user, token_missing=token_missing)
    form.is_valid()
    if refusal is not None:
        add_service_errors(form, refusal)
    return _form_page(request, form, from_csv=request.POST.get("from_csv") == "True")


def _form_page(
    request: HttpRequest, form: SetActionForm, *, from_csv: bool = False
) -> HttpResponse:
    context = {"form": form, "from_csv": from_csv}
    return render(request, "jobs/set_action.html", context)
