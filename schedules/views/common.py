"""What the schedules pages share: which rows a user may see, and the errors of a service
put on a form."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet

from schedules.models import SavedSetAction, Schedule

PER_PAGE = 25


def sees_everyone(user) -> bool:
    return user.has_perm("jobs.view_all_jobs")


def visible_saved(user) -> QuerySet[SavedSetAction]:
    """A user's own saved Set Actions; everyone's for those who see everyone's jobs."""
    saved = SavedSetAction.objects.select_related("owner", "cluster")
    return saved if sees_everyone(user) else saved.filter(owner=user.pk)


def visible_schedules(user) -> QuerySet[Schedule]:
    schedules = Schedule.objects.select_related(
        "owner", "saved_set_action", "saved_set_action__cluster"
    )
    return schedules if sees_everyone(user) else schedules.filter(owner=user.pk)


def add_errors(form, exc: ValidationError | PermissionDenied, rename: dict[str, str]) -> None:
    """The service's refusal next to the form's fields: by field where the form has one
    (`rename` maps the service's names to the form's), at the top otherwise."""
    if isinstance(exc, PermissionDenied):
        form.add_error(None, str(exc))
        return
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.message_dict.items():
        field = rename.get(name, name)
        if field in form.fields and not form.fields[field].widget.is_hidden:
            form.add_error(field, errors)
        else:
            form.add_error(None, errors)
