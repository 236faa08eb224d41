from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api.views import clusters

urlpatterns = [
    path("", include("api.write_urls")),
    path("clusters", clusters.ClusterList.as_view(), name="api_clusters"),
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
