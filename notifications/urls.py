"""The Notifications page of the operator UI, included at accounts/notifications/."""

from django.urls import path

from notifications import views

urlpatterns = [
    path("", views.notification_preferences, name="notification_preferences"),
]
