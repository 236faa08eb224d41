from django.urls import path

from jobs import views

urlpatterns = [
    path("", views.set_action, name="set_action"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/export.csv", views.job_export, name="job_export"),
    path("jobs/<uuid:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:pk>/retry/", views.job_retry_view, name="job_retry"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel_view, name="job_cancel"),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/cancel/", views.batch_cancel_view, name="batch_cancel"),
    # The customer ID goes in the query (?cid=...): imported legacy IDs may hold "/", "?" or dots
    # that no path segment carries safely.
    path("customers/", views.customer_history, name="customer_history"),
]
