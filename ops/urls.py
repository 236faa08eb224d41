from django.urls import path

from ops import pages, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("overview/", pages.overview, name="overview"),
]
