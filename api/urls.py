from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api.views import approvals, audit, batches, clusters, customers, jobs, stats

urlpatterns = [
    path("", include("api.write_urls")),
    path("clusters", clusters.ClusterList.as_view(), name="api_clusters"),
    path("jobs", jobs.JobList.as_view(), name="api_jobs"),
    # Ids are checked by the views, so that a malformed one is a 404 problem like an unknown one.
    path("jobs/<str:id>", jobs.JobDetail.as_view(), name="api_job"),
    path("jobs/<str:id>/customers", jobs.JobCustomers.as_view(), name="api_job_customers"),
    path("batches/<str:id>", batches.BatchDetail.as_view(), name="api_batch"),
    # Any customer ID without "/" (the UI passes it as ?cid= for that reason).
    path("customers/<str:cid>/jobs", customers.CustomerJobs.as_view(), name="api_customer_jobs"),
    path("audit", audit.AuditList.as_view(), name="api_audit"),
    path("approvals", approvals.ApprovalList.as_view(), name="api_approvals"),
    path("stats", stats.Stats.as_view(), name="api_stats"),
    path(
        "schema",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="api_schema",
    ),
    # The split view serves its script as a file of its own: the CSP allows no inline script.
    # Swagger UI sets inline styles, which this page alone allows.
    path(
        "docs",
        csp_update({"style-src": ["'self'", "'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(
                url_name="api_schema", authentication_classes=[], permission_classes=[]
            )
        ),
        name="api_docs",
    ),
]
