from django.urls import path

from schedules.views import saved, schedule_pages

urlpatterns = [
    path("saved-set-actions/", saved.saved_list, name="saved_set_action_list"),
    path("saved-set-actions/new/", saved.saved_new, name="saved_set_action_new"),
    path("saved-set-actions/<int:pk>/", saved.saved_detail, name="saved_set_action_detail"),
    path("saved-set-actions/<int:pk>/edit/", saved.saved_edit, name="saved_set_action_edit"),
    path("saved-set-actions/<int:pk>/run/", saved.saved_run, name="saved_set_action_run"),
    path("saved-set-actions/<int:pk>/delete/", saved.saved_delete, name="saved_set_action_delete"),
    path("schedules/", schedule_pages.schedule_list, name="schedule_list"),
    path("schedules/new/", schedule_pages.schedule_new, name="schedule_new"),
    path("schedules/<int:pk>/", schedule_pages.schedule_detail, name="schedule_detail"),
    path("schedules/<int:pk>/pause/", schedule_pages.schedule_pause_view, name="schedule_pause"),
    path("schedules/<int:pk>/resume/", schedule_pages.schedule_resume_view, name="schedule_resume"),
    path(
        "schedules/<int:pk>/approve/", schedule_pages.schedule_approve_view, name="schedule_approve"
    ),
    path("schedules/<int:pk>/delete/", schedule_pages.schedule_delete_view, name="schedule_delete"),
]
