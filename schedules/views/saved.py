"""Saved Set Actions: the list, saving one, its page with its version history, editing it
(a new version), and "Run now", which opens the Set Action form filled in with it: the
ordinary review and confirmation follow, and nothing is sent until the operator confirms."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from audit.services import client_ip
from jobs.forms import SetActionForm
from jobs.models import Job
from schedules.forms import SavedSetActionForm
from schedules.models import SavedSetAction, SavedSetActionVersion
from schedules.services import (
    may_manage,
    saved_set_action_create,
    saved_set_action_delete,
    saved_set_action_edit,
)
from schedules.views.common import PER_PAGE, add_errors, sees_everyone, visible_saved

# How many customer IDs a saved Set Action's page names.
SHOWN_CIDS = 20
# How many versions its history shows, the newest first.
SHOWN_VERSIONS = 50


@never_cache
@login_required
def saved_list(request: HttpRequest) -> HttpResponse:
    saved = visible_saved(request.user).annotate(schedule_count=Count("schedules"))
    page = Paginator(saved.order_by("name", "pk"), PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "everyone": sees_everyone(request.user)}
    return render(request, "schedules/saved_list.html", context)


def _saved_form_errors(form: SavedSetActionForm, exc) -> None:
    # Errors about the customers belong next to where they came from.
    rename = {"cids": "csv_file"} if form.cleaned_data.get("csv_file") else {}
    add_errors(form, exc, rename)


@never_cache
@login_required
@permission_required("jobs.run_set_action", raise_exception=True)
def saved_new(request: HttpRequest) -> HttpResponse:
    form = SavedSetActionForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            saved = saved_set_action_create(
                user=request.user, ip_address=client_ip(request), **form.saving()
            )
        except (ValidationError, PermissionDenied) as exc:
            _saved_form_errors(form, exc)
        else:
            messages.success(request, f"Saved “{saved.name}” (version 1).")
            return redirect("saved_set_action_detail", pk=saved.pk)
    return render(request, "schedules/saved_form.html", {"form": form, "saved": None})


@dataclass
class VersionRow:
    version: SavedSetActionVersion
    changes: list[str]


def _changes(old: SavedSetActionVersion | None, new: SavedSetActionVersion) -> list[str]:
    """What `new` changed of `old`, in words: name, action, cluster, customers (how many,
    how many added and removed)."""
    if old is None:
        return [
            f"Created: {new.get_action_display()} on {new.cluster_name or 'no cluster'}, "
            f"{new.customer_count} customer(s)"
        ]
    changes = []
    if old.name != new.name:
        changes.append(f"Name “{old.name}” → “{new.name}”")
    if old.action != new.action:
        changes.append(f"Action {old.get_action_display()} → {new.get_action_display()}")
    if old.cluster_name != new.cluster_name:
        changes.append(f"Cluster {old.cluster_name or '—'} → {new.cluster_name or '—'}")
    if old.cids != new.cids:
        before, after = set(old.cids.split("\n")), set(new.cids.split("\n"))
        changes.append(
            f"Customers {old.customer_count} → {new.customer_count} "
            f"({len(after - before)} added, {len(before - after)} removed)"
        )
    return changes or ["No change"]


def _history(saved: SavedSetAction) -> tuple[list[VersionRow], int]:
    """Its versions, the newest first, each with what it changed; and how many are older
    than those shown."""
    versions = list(
        saved.versions.select_related("edited_by").order_by("-version")[: SHOWN_VERSIONS + 1]
    )
    rows = [
        VersionRow(version, _changes(versions[n + 1] if n + 1 < len(versions) else None, version))
        for n, version in enumerate(versions[:SHOWN_VERSIONS])
    ]
    older = saved.versions.count() - len(rows)
    return rows, older


@never_cache
@login_required
def saved_detail(request: HttpRequest, pk: int) -> HttpResponse:
    saved = get_object_or_404(visible_saved(request.user), pk=pk)
    cids = saved.cid_list
    history, older = _history(saved)
    context = {
        "saved": saved,
        "action_label": Job.Action(saved.action).label,
        "shown": cids[:SHOWN_CIDS],
        "more": max(len(cids) - SHOWN_CIDS, 0),
        "history": history,
        "older": older,
        "schedules": saved.schedules.order_by("-created_at", "-pk"),
        "may_edit": may_manage(request.user, saved.owner_id),
        "may_run": request.user.has_perm("jobs.run_set_action"),
        "may_schedule": saved.owner_id == request.user.pk
        and request.user.has_perm("jobs.run_set_action"),
    }
    return render(request, "schedules/saved_detail.html", context)


@never_cache
@login_required
def saved_edit(request: HttpRequest, pk: int) -> HttpResponse:
    saved = get_object_or_404(visible_saved(request.user), pk=pk)
    if not may_manage(request.user, saved.owner_id):
        raise PermissionDenied("Only its owner or an admin may change a saved Set Action.")
    initial = {
        "name": saved.name,
        "action": saved.action,
        "cluster": saved.cluster_id,
        "cids": saved.cids,
    }
    # The owner runs it: their grants say which actions and clusters it may hold.
    form = SavedSetActionForm(
        request.POST or None, request.FILES or None, user=saved.owner, saved=saved, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        before = saved.version
        try:
            saved = saved_set_action_edit(
                saved=saved, user=request.user, ip_address=client_ip(request), **form.saving()
            )
        except (ValidationError, PermissionDenied) as exc:
            _saved_form_errors(form, exc)
        else:
            if saved.version == before:
                messages.info(request, "Nothing changed: no new version.")
            else:
                messages.success(request, f"Saved “{saved.name}” as version {saved.version}.")
            return redirect("saved_set_action_detail", pk=saved.pk)
    return render(request, "schedules/saved_form.html", {"form": form, "saved": saved})


@never_cache
@login_required
@permission_required("jobs.run_set_action", raise_exception=True)
def saved_run(request: HttpRequest, pk: int) -> HttpResponse:
    """The Set Action form filled in with the saved Set Action, posting to the Set Action
    page: its review, token or stored credential, and confirmation apply as ever. The job is
    made by the signed-in user, under their own run grants."""
    saved = get_object_or_404(visible_saved(request.user), pk=pk)
    initial = {"action": saved.action, "cluster": saved.cluster_id, "cids": saved.cids}
    form = SetActionForm(initial=initial, user=request.user)
    offered = saved.action in form.choices.actions and (
        form.choices.clusters.filter(pk=saved.cluster_id).exists()
    )
    context = {"saved": saved, "form": form, "offered": offered}
    return render(request, "schedules/saved_run.html", context)


@never_cache
@login_required
@require_POST
def saved_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete it and its versions (the jobs it ran stay); refused while a schedule runs it."""
    saved = get_object_or_404(visible_saved(request.user), pk=pk)
    try:
        saved_set_action_delete(saved=saved, user=request.user, ip_address=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("saved_set_action_detail", pk=saved.pk)
    messages.success(request, f"Deleted “{saved.name}”.")
    return redirect("saved_set_action_list")
