from django.urls import path

from ops import audit_pages, pages, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("overview/", pages.overview, name="overview"),
    path("audit/", audit_pages.audit_log, name="audit_log"),
    path("audit/export.csv", audit_pages.audit_export, name="audit_export"),
]
