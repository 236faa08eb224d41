"""The admin for clusters: their settings, saved and deleted through jobs.clusters (audited),
and their stored credential, written on the cluster's page and never shown back, through
jobs.services. A cluster with jobs is never deleted: its history stays."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import unquote
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.timezone import localtime
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from audit.services import client_ip
from jobs.clusters import FIELDS as CLUSTER_FIELDS
from jobs.clusters import cluster_delete, cluster_save
from jobs.models import Cluster, Job
from jobs.services import credential_remove, credential_set, credential_status
from jobs.tokens import token_errors
from lib.admin import CheckedModelAdmin, history_refusal


class ClusterForm(forms.ModelForm):
    class Meta:
        model = Cluster
        fields = CLUSTER_FIELDS


class ClusterCredentialForm(ClusterForm):
    """The cluster, and its stored credential written (never shown back) or removed: for
    those who may change stored credentials (jobs.change_clustercredential)."""

    new_credential = forms.CharField(
        label="New stored credential",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The cluster's service token for unattended runs and operators whose run "
        "grant allows it. Stored encrypted and never shown again; leave empty to keep the "
        "current one.",
    )
    remove_credential = forms.BooleanField(
        label="Remove the stored credential",
        required=False,
        help_text="Jobs queued to use it then fail without calling the cluster.",
    )

    @sensitive_variables()
    def clean_new_credential(self) -> str:
        token = self.cleaned_data["new_credential"]
        if token and (problems := token_errors(token)):
            raise forms.ValidationError(problems)
        return token

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("new_credential") and cleaned.get("remove_credential"):
            raise forms.ValidationError("Give a new stored credential or remove it, not both.")
        return cleaned


@admin.register(Cluster)
class ClusterAdmin(CheckedModelAdmin):
    form = ClusterCredentialForm
    readonly_fields = ("stored_credential",)
    list_display = (
        "name",
        "base_url",
        "environment",
        "is_active",
        "timeout_seconds",
        "max_cids_per_request",
        "max_concurrent_calls",
        "verify_tls",
    )
    list_filter = ("is_active", "environment")
    search_fields = ("name", "base_url")
    actions = ("delete_selected",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        if not request.user.has_perm("jobs.change_clustercredential"):
            kwargs["form"] = ClusterForm
        return super().get_form(request, obj, change, **kwargs)

    @method_decorator(sensitive_post_parameters("new_credential"))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # Error reports leave the typed credential out.
        return super().changeform_view(request, object_id, form_url, extra_context)

    @sensitive_variables()
    def save_model(self, request: HttpRequest, obj: Cluster, form: Any, change: bool) -> None:
        # The admin's change view holds one transaction: the cluster and its credential are
        # saved together or not at all.
        ip_address = client_ip(request)
        cluster_save(cluster=obj, actor=request.user, ip_address=ip_address)
        if token := form.cleaned_data.get("new_credential"):
            credential_set(cluster=obj, token=token, actor=request.user, ip_address=ip_address)
        elif form.cleaned_data.get("remove_credential"):
            credential_remove(cluster=obj, actor=request.user, ip_address=ip_address)

    @admin.display(description="stored credential")
    def stored_credential(self, cluster: Cluster) -> str:
        if cluster.pk is None:
            return "Not set."
        status = credential_status(cluster=cluster)
        if not status.set:
            return "Not set."
        by = f" by {status.changed_by}" if status.changed_by else ""
        return f"Set; last changed {localtime(status.changed_at):%Y-%m-%d %H:%M %Z}{by}."

    def delete_model(self, request: HttpRequest, obj: Cluster) -> None:
        cluster_delete(cluster=obj, actor=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for cluster in queryset:
            cluster_delete(cluster=cluster, actor=request.user, ip_address=client_ip(request))

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        # Job.cluster is PROTECT: instead of Django's page listing every protected job (there
        # may be millions), say what to do and go back to the cluster.
        cluster = self.get_object(request, unquote(object_id))
        if (
            cluster is not None
            and self.has_delete_permission(request, cluster)
            and cluster.jobs.exists()
        ):
            self.message_user(
                request,
                history_refusal([cluster.name], kind="cluster", history="jobs"),
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:jobs_cluster_change", args=[cluster.pk]))
        return super().delete_view(request, object_id, extra_context)

    @admin.action(description="Delete selected clusters", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        # Replaces Django's action of the same name, which would list every protected job.
        in_use = list(
            queryset.filter(Exists(Job.objects.filter(cluster=OuterRef("pk")))).values_list(
                "name", flat=True
            )
        )
        if in_use:
            self.message_user(
                request, history_refusal(in_use, kind="cluster", history="jobs"), messages.ERROR
            )
            return None
        return admin_actions.delete_selected(self, request, queryset)
