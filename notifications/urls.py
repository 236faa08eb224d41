"""The Notifications page of the operator UI, included at accounts/notifications/."""

from django.urls import path

from notifications import views

urlpatterns = [
    path("", views.notification_preferences, name="notification_preferences"),
    path("email/", views.notification_email_change, name="notification_email_change"),
    path("email/confirm/", views.notification_email_confirm, name="notification_email_confirm"),
]
