"""The admin index in the operators' words: what each app and each list is for
(templates/admin/index.html). Django names apps and models after the code ("Axes", "Task
Results"); a line under each says what an administrator finds there."""

from __future__ import annotations

from django import template

register = template.Library()

# By app label, then by app label and model name (lower case). An app or model missing here
# shows no line: tests/test_admin_index.py checks that every registered one has one.
APPS = {
    "accounts": "Who signed in through the company's identity provider.",
    "api": "Personal keys to the JSON API.",
    "audit": "What happened, who did it and to which job: the record auditors read.",
    "auth": "The people who may sign in, and the groups that give them their permissions.",
    "axes": "Sign-in lockouts: failed sign-in attempts and locked accounts.",
    "django_tasks_database": "Background work: the queue of tasks the workers run.",
    "jobs": "Set Actions sent to the clusters, and the rules for sending them.",
    "notifications": "E-mails and webhook calls telling people what happened.",
    "schedules": "Set Actions saved to run later or on a schedule.",
}
MODELS = {
    "accounts.identity": "A user as the company's identity provider knows them.",
    "api.apitoken": "Each user's API tokens; only a hash of the secret is kept.",
    "audit.auditentry": "Every recorded event, newest first; read-only.",
    "auth.group": "Roles (Operators, Auditors, Approvers) and what each may do.",
    "auth.user": "Accounts that may sign in, their groups and whether they are active.",
    "axes.accessattempt": "Failed sign-ins counting towards a lockout (per username and "
    "address); deleting one lifts its lockout.",
    "axes.accessfailurelog": "Every failed sign-in attempt, and whether it locked the account.",
    "axes.accesslog": "Every sign-in and sign-out, with address and browser.",
    "django_tasks_database.dbtaskresult": "Each background task (running a job, sending a "
    "notice): queued, running, done or failed, with its error.",
    "jobs.approvalrequest": "Set Actions waiting for an approver, and the decisions taken.",
    "jobs.approvalrule": "Which Set Actions must be approved first, and by whom.",
    "jobs.changefreeze": "Periods when nothing is sent to a cluster (or to any).",
    "jobs.cluster": "The TMS clusters operators may send Set Actions to.",
    "jobs.failedjob": "FAILED and UNKNOWN jobs, newest first.",
    "jobs.job": "Every Set Action sent to a cluster, with its outcome.",
    "jobs.jobcustomer": "The customers each job touched, with each one's outcome.",
    "jobs.maintenancewindow": "When a cluster's jobs may be sent (a cluster without windows "
    "takes them at any time).",
    "jobs.rungrant": "Who may run which action on which cluster.",
    "notifications.notice": "Each e-mail or webhook call, sent or waiting, and its answer.",
    "notifications.webhookendpoint": "Addresses that notices are posted to.",
    "schedules.occurrence": "Each time a schedule was due, and whether its Set Action ran.",
    "schedules.savedsetaction": "Set Actions operators named to run later or on a schedule.",
    "schedules.savedsetactionversion": "What a saved Set Action held before each edit.",
    "schedules.schedule": "When each saved Set Action runs: once, or again and again.",
}


@register.filter
def app_purpose(app: dict) -> str:
    """What an app of the admin's app list is for ("" when not described)."""
    return APPS.get(app["app_label"], "")


@register.filter
def model_purpose(model: dict, app_label: str) -> str:
    """What a model of the admin's app list is for ("" when not described)."""
    return MODELS.get(f"{app_label}.{model['object_name'].lower()}", "")
