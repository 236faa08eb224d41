"""The admin of change freezes and maintenance windows: added and removed (never changed in
place) through jobs.services.freezes, audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.services import client_ip
from jobs.models import ChangeFreeze, MaintenanceWindow
from jobs.services import freeze_create, freeze_delete, window_create, window_delete
from lib.admin import CheckedModelAdmin


@admin.register(ChangeFreeze)
class ChangeFreezeAdmin(CheckedModelAdmin):
    list_display = ("id", "cluster", "starts_at", "ends_at", "reason", "created_by", "created_at")
    list_select_related = ("cluster", "created_by")
    list_filter = ("cluster",)
    fields = ("cluster", "starts_at", "ends_at", "reason")
    actions = ("delete_selected",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Replaced, not changed: the audit trail then holds both freezes.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ChangeFreeze, form: Any, change: bool) -> None:
        freeze_create(freeze=obj, actor=request.user, ip_address=client_ip(request))

    def delete_model(self, request: HttpRequest, obj: ChangeFreeze) -> None:
        freeze_delete(freeze=obj, actor=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for freeze in queryset.select_related("cluster"):
            freeze_delete(freeze=freeze, actor=request.user, ip_address=client_ip(request))


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(CheckedModelAdmin):
    list_display = (
        "id",
        "cluster",
        "rrule",
        "timezone",
        "starts_at",
        "duration_seconds",
        "created_by",
        "created_at",
    )
    list_select_related = ("cluster", "created_by")
    list_filter = ("cluster",)
    fields = ("cluster", "rrule", "timezone", "starts_at", "duration_seconds")
    actions = ("delete_selected",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Replaced, not changed: the audit trail then holds both windows.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: MaintenanceWindow, form: Any, change: bool
    ) -> None:
        window_create(window=obj, actor=request.user, ip_address=client_ip(request))

    def delete_model(self, request: HttpRequest, obj: MaintenanceWindow) -> None:
        window_delete(window=obj, actor=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for window in queryset.select_related("cluster"):
            window_delete(window=window, actor=request.user, ip_address=client_ip(request))
