"""The API's endpoints that change something: Set Actions, retries and cancels."""

from django.urls import path

from api.views import submit

urlpatterns = [
    path("set-actions", submit.SetActionCreate.as_view(), name="api_set_actions"),
    path("jobs/<str:id>/retry", submit.JobRetry.as_view(), name="api_job_retry"),
    path("jobs/<str:id>/cancel", submit.JobCancel.as_view(), name="api_job_cancel"),
]
