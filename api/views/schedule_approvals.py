"""POST /api/v1/schedules/{id}/approve: approve a schedule's current version where an approval
rule covers its runs, with a token of the approve scope, as a member of the rule's group who is
not the schedule's owner (schedules.services.approvals); nothing is written on any refusal."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.problems import problem
from api.schema import operation
from api.views.approval_rules import Whole
from api.views.approvals import NO_SCOPE
from api.views.grants import row_by_id
from api.views.saved_set_actions import managed_by
from api.views.schedules import SCHEDULE_ID
from audit.services import client_ip
from schedules.models import Schedule
from schedules.services import (
    NothingToApprove,
    StaleVersion,
    VersionApproval,
    schedule_approval_state,
    schedule_approve,
)


class ApproveVersionRequest(serializers.Serializer):
    version = Whole(
        min_value=1,
        max_value=2**31 - 1,
        help_text="The saved Set Action's version you approve: its current one (see GET "
        "/saved-set-actions/{id}); 409 when it changed since.",
    )


class VersionApprovalSerializer(serializers.Serializer):
    schedule = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The saved Set Action's current version.")
    needed = serializers.BooleanField(help_text="Whether an approval rule covers its runs.")
    per_run = serializers.BooleanField(help_text="Whether each run waits for its own approval.")
    approvers_group = serializers.CharField(allow_null=True)
    approvers_required = serializers.IntegerField(allow_null=True)
    approved_by = serializers.ListField(child=serializers.CharField())
    approved = serializers.BooleanField(
        help_text="Whether its runs go out without a request of their own."
    )


def _approval(schedule: Schedule, state: VersionApproval) -> dict:
    return {
        "schedule": schedule.pk,
        "version": state.version,
        "needed": state.needed,
        "per_run": state.per_run,
        "approvers_group": state.group or None,
        "approvers_required": state.required or None,
        "approved_by": list(state.approvers),
        "approved": state.approved,
    }


class ScheduleApprove(APIView):
    @operation(
        operation_id="schedules_approve",
        summary="Approve a schedule's version, so that its runs wait for no approval each",
        tag="schedules",
        request=ApproveVersionRequest,
        parameters=[SCHEDULE_ID],
        responses={200: VersionApprovalSerializer},
        errors=(403, 404, 409, 415),
    )
    def post(self, request: Request, id: str) -> Response:
        """Approve the schedule's current `version`, audited, as a member of the group of the
        approval rule that covers its runs, with a token of the approve scope. 403 for the
        schedule's owner and for anyone else not in that group; 409 when `version` is no
        longer current, or when no rule covers the runs or the rule asks per run; 404 for a
        schedule the caller neither owns (an admin: any) nor approves. Nothing is written on
        any refusal; the same approver again changes nothing."""
        data = ApproveVersionRequest(data=request.data)
        data.is_valid(raise_exception=True)
        if not request.auth.can_approve:
            raise PermissionDenied(NO_SCOPE)
        schedule = row_by_id(Schedule.objects.select_related("owner", "saved_set_action"), id)
        state = schedule_approval_state(schedule)
        mine = managed_by(request.user, Schedule.objects.filter(pk=schedule.pk)).exists()
        approves = state.needed and request.user.groups.filter(name=state.group).exists()
        if not (mine or approves):
            raise NotFound
        try:
            state = schedule_approve(
                schedule=schedule,
                user=request.user,
                version=data.validated_data["version"],
                ip_address=client_ip(request._request),
            )
        except (StaleVersion, NothingToApprove) as exc:
            return problem(409, " ".join(exc.messages))
        return Response(_approval(schedule, state))
