from django.urls import path

from jobs.views import approvals, batch, job, lists, recent, set_action

urlpatterns = [
    path("", set_action.set_action, name="set_action"),
    path("jobs/recent/", recent.recent_jobs, name="recent_jobs"),
    path("jobs/", lists.job_list, name="job_list"),
    path("jobs/export.csv", lists.job_export, name="job_export"),
    path("jobs/<uuid:pk>/", job.job_detail, name="job_detail"),
    path("jobs/<uuid:pk>/customers.csv", job.job_customers_export, name="job_customers_export"),
    path("jobs/<uuid:pk>/retry/", job.job_retry_view, name="job_retry"),
    path("jobs/<uuid:pk>/cancel/", job.job_cancel_view, name="job_cancel"),
    path("jobs/<uuid:pk>/looked-at/", job.job_looked_at_view, name="job_looked_at"),
    path("batches/<uuid:batch_id>/", batch.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/retry/", batch.batch_retry_view, name="batch_retry"),
    path("batches/<uuid:batch_id>/cancel/", batch.batch_cancel_view, name="batch_cancel"),
    path("approvals/", approvals.approval_list, name="approval_list"),
    path("approvals/<uuid:pk>/", approvals.approval_detail, name="approval_detail"),
    path(
        "approvals/<uuid:pk>/withdraw/",
        approvals.approval_withdraw_view,
        name="approval_withdraw",
    ),
    # The customer ID goes in the query (?cid=...): imported legacy IDs may hold "/", "?" or dots
    # that no path segment carries safely.
    path("customers/", lists.customer_history, name="customer_history"),
]
