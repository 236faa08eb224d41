"""The Set Action page: the form that submits jobs, and the operator's recent jobs."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from audit.services import client_ip
from jobs.forms import SetActionForm
from jobs.models import Job
from jobs.services import CustomerConflict, job_submit
from jobs.views.common import add_service_errors, jobs_page


@never_cache
@sensitive_post_parameters("token")
@login_required
@permission_required("jobs.run_set_action", raise_exception=True)
def set_action(request: HttpRequest) -> HttpResponse:
    form = SetActionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        # Errors about the customers belong next to where they came from.
        rename = {"cids": "csv_file"} if form.cleaned_data.get("csv_file") else {}
        try:
            jobs = job_submit(user=request.user, ip_address=client_ip(request), **form.submission())
        except CustomerConflict as exc:
            add_service_errors(form, exc, rename)
            conflicts = exc.job_ids
        except ValidationError as exc:
            add_service_errors(form, exc, rename)
            conflicts = []
        else:
            return redirect(jobs_page(jobs))
    else:
        conflicts = []
    recent = Job.objects.filter(user=request.user).select_related("cluster")[:5]
    return render(
        request, "jobs/set_action.html", {"form": form, "recent": recent, "conflicts": conflicts}
    )
