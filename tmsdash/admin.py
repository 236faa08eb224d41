"""Django's, django-axes' and django-tasks' own admins, registered again with a checked
bulk-action selection (lib.admin.CheckedSelectionMixin), as every admin of the project's apps is.

This app is the last in INSTALLED_APPS, so the admin's autodiscovery has registered theirs by
the time it imports this module.
"""

from __future__ import annotations

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django_tasks_db.models import DBTaskResult

from lib.admin import CheckedSelectionMixin

for model in (User, Group, AccessAttempt, AccessLog, AccessFailureLog, DBTaskResult):
    original = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    admin.site.register(model, type(original.__name__, (CheckedSelectionMixin, original), {}))
