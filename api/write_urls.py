"""The API's endpoints that change something: Set Actions, retries, cancels, approving or
denying what waits for approval, run grants, approval rules, clusters' stored credentials,
change freezes and maintenance windows, saved Set Actions and their schedules."""

from django.urls import path

from api.views import (
    approval_rules,
    approvals,
    clusters,
    freezes,
    grants,
    saved_set_actions,
    schedule_approvals,
    schedules,
    submit,
)

urlpatterns = [
    path("set-actions", submit.SetActionCreate.as_view(), name="api_set_actions"),
    path("jobs/<str:id>/retry", submit.JobRetry.as_view(), name="api_job_retry"),
    path("jobs/<str:id>/cancel", submit.JobCancel.as_view(), name="api_job_cancel"),
    path("jobs/<str:id>/approve", approvals.JobApprove.as_view(), name="api_job_approve"),
    path("jobs/<str:id>/deny", approvals.JobDeny.as_view(), name="api_job_deny"),
    path("run-grants", grants.RunGrantList.as_view(), name="api_run_grants"),
    # Ids are checked by the view, so that a malformed one is a 404 problem like an unknown one.
    path("run-grants/<str:id>", grants.RunGrantDetail.as_view(), name="api_run_grant"),
    path("approval-rules", approval_rules.ApprovalRuleList.as_view(), name="api_approval_rules"),
    path(
        "approval-rules/<str:id>",
        approval_rules.ApprovalRuleDetail.as_view(),
        name="api_approval_rule",
    ),
    # Any name but one with "/": the view answers 404 for a cluster it does not know.
    path(
        "clusters/<str:name>/credential",
        clusters.ClusterCredentialDetail.as_view(),
        name="api_cluster_credential",
    ),
    path("change-freezes", freezes.ChangeFreezeList.as_view(), name="api_change_freezes"),
    path("change-freezes/<str:id>", freezes.ChangeFreezeDetail.as_view(), name="api_change_freeze"),
    path(
        "clusters/<str:name>/maintenance-windows",
        freezes.MaintenanceWindowList.as_view(),
        name="api_maintenance_windows",
    ),
    path(
        "clusters/<str:name>/maintenance-windows/<str:id>",
        freezes.MaintenanceWindowDetail.as_view(),
        name="api_maintenance_window",
    ),
    path(
        "saved-set-actions",
        saved_set_actions.SavedSetActionList.as_view(),
        name="api_saved_set_actions",
    ),
    path("schedules", schedules.ScheduleList.as_view(), name="api_schedules"),
    path("schedules/<str:id>", schedules.ScheduleDetail.as_view(), name="api_schedule"),
    path("schedules/<str:id>/next", schedules.ScheduleNext.as_view(), name="api_schedule_next"),
    path(
        "schedules/<str:id>/occurrences",
        schedules.ScheduleOccurrences.as_view(),
        name="api_schedule_occurrences",
    ),
    path(
        "schedules/<str:id>/approve",
        schedule_approvals.ScheduleApprove.as_view(),
        name="api_schedule_approve",
    ),
    path("schedules/<str:id>/pause", schedules.SchedulePause.as_view(), name="api_schedule_pause"),
    path(
        "schedules/<str:id>/resume", schedules.ScheduleResume.as_view(), name="api_schedule_resume"
    ),
]
