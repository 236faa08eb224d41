"""The admin of saved Set Actions and schedules: every change through schedules.services,
audited; versions and occurrences are history, read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.services import client_ip
from jobs.csvinput import MAX_CSV_BYTES, csv_read_cids
from jobs.services import set_action_checked
from lib.admin import CheckedModelAdmin, ReadOnlyAdmin
from schedules.models import Occurrence, SavedSetAction, SavedSetActionVersion, Schedule
from schedules.services import (
    saved_set_action_create,
    saved_set_action_delete,
    saved_set_action_edit,
    schedule_delete,
    schedule_pause,
    schedule_resume,
)


class SavedSetActionForm(forms.ModelForm):
    """The customers typed or from an uploaded CSV file (as the Set Action form takes them),
    checked as a submit by the owner is before anything is saved."""

    cids = forms.CharField(
        label="Customer IDs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Separated by commas, spaces or new lines.",
    )
    csv_file = forms.FileField(
        label="or a CSV file",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        help_text="A column headed cid, customer_id or CID, or a single column; at most 5 MB.",
    )

    class Meta:
        model = SavedSetAction
        fields = ("name", "action", "cluster", "cids", "csv_file")

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        if upload is None:
            return None
        if upload.size > MAX_CSV_BYTES:
            raise ValidationError("The CSV file is larger than 5 MB.")
        return csv_read_cids(upload.read())

    def clean(self) -> dict:
        data = super().clean()
        owner = self.instance.owner if self.instance.pk else self.user
        typed = data.get("cids", "").strip()
        if typed and data.get("csv_file"):
            raise ValidationError("Give customer IDs or a CSV file, not both.")
        if data.get("csv_file"):
            data["cids"], data["cid_positions"] = data["csv_file"]
        elif not typed and "csv_file" not in self.errors:
            self.add_error("cids", "Give customer IDs, or choose a CSV file.")
        if {"action", "cluster"} <= set(data) and not self.errors:
            try:
                set_action_checked(
                    user=owner,
                    action=data["action"],
                    cluster=data["cluster"] or "",
                    cids=data["cids"],
                    cid_positions=data.get("cid_positions"),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
            except PermissionDenied as exc:
                self.add_error(None, str(exc))
        return data


@admin.register(SavedSetAction)
class SavedSetActionAdmin(CheckedModelAdmin):
    form = SavedSetActionForm
    list_display = ("name", "owner", "action", "cluster", "customer_count", "version", "updated_at")
    list_select_related = ("owner", "cluster")
    search_fields = ("name", "owner__username")
    readonly_fields = ("owner", "version", "customer_count", "created_at", "updated_at")
    actions = ("delete_selected",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple:
        fields = ("name", "action", "cluster", "cids", "csv_file")
        return fields + self.readonly_fields if obj else fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.user = request.user
        return form

    def save_model(self, request: HttpRequest, obj: SavedSetAction, form, change: bool) -> None:
        data = form.cleaned_data
        values = {
            "name": data["name"],
            "action": data["action"],
            "cluster": data["cluster"],
            "cids": data["cids"],
            "cid_positions": data.get("cid_positions"),
            "ip_address": client_ip(request),
        }
        if change:
            saved = SavedSetAction.objects.get(pk=obj.pk)
            saved_set_action_edit(saved=saved, user=request.user, **values)
        else:
            obj.pk = saved_set_action_create(user=request.user, **values).pk

    def delete_model(self, request: HttpRequest, obj: SavedSetAction) -> None:
        saved_set_action_delete(saved=obj, user=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for saved in queryset:
            try:
                saved_set_action_delete(
                    saved=saved, user=request.user, ip_address=client_ip(request)
                )
            except ValidationError as exc:
                self.message_user(request, f"{saved}: {' '.join(exc.messages)}", messages.ERROR)


@admin.register(SavedSetActionVersion)
class SavedSetActionVersionAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "version",
        "action",
        "cluster_name",
        "customer_count",
        "edited_by",
        "edited_at",
    )
    list_select_related = ("edited_by",)
    search_fields = ("name",)


@admin.register(Schedule)
class ScheduleAdmin(CheckedModelAdmin):
    list_display = (
        "id",
        "saved_set_action",
        "owner",
        "run_at",
        "rrule",
        "timezone",
        "paused",
        "created_at",
    )
    list_select_related = ("saved_set_action", "owner")
    list_filter = ("paused",)
    actions = ("pause", "resume", "delete_selected")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Created through the API and the pages, which check the rule and the zone.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewed here; paused, resumed and deleted by the actions, through the services.
        return False

    @admin.action(description="Pause the selected schedules")
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = sum(
            schedule_pause(schedule=s, user=request.user, ip_address=client_ip(request))
            for s in queryset
        )
        self.message_user(request, f"{changed} schedule(s) paused.")

    @admin.action(description="Resume the selected schedules")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = sum(
            schedule_resume(schedule=s, user=request.user, ip_address=client_ip(request))
            for s in queryset
        )
        self.message_user(request, f"{changed} schedule(s) resumed.")

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        schedule_delete(schedule=obj, user=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for schedule in queryset:
            schedule_delete(schedule=schedule, user=request.user, ip_address=client_ip(request))


@admin.register(Occurrence)
class OccurrenceAdmin(ReadOnlyAdmin):
    list_display = ("schedule", "occurs_at", "state", "reason", "version", "job", "recorded_at")
    list_select_related = ("schedule__saved_set_action",)
    list_filter = ("state",)
