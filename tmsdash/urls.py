from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "TMS Dashboard administration"
admin.site.site_title = "TMS Dashboard administration"
admin.site.index_title = "Administration"

handler400 = "tmsdash.views.bad_request"
handler404 = "tmsdash.views.page_not_found"
handler500 = "tmsdash.views.server_error"

urlpatterns = [
    path("", include("jobs.urls")),
    path("", include("ops.urls")),
    path("", include("schedules.urls")),
    path("api/v1/", include("api.urls")),
    path("accounts/", include("accounts.urls")),
    path("accounts/api-tokens/", include("api.page_urls")),
    path("accounts/notifications/", include("notifications.urls")),
    # Changing one's own password needs the current one. There is no password reset by
    # e-mail: administrators set passwords, and a reset form would let anyone send mail to any
    # address of an account, unthrottled.
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
]
