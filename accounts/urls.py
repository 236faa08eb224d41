from django.urls import path

from accounts.views.provider import ProviderCallbackView, ProviderSignInView
from accounts.views.signin import SignInView
from accounts.views.signout import SignOutView

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", SignOutView.as_view(), name="logout"),
    path("oidc/login/", ProviderSignInView.as_view(), name="oidc_login"),
    path("oidc/callback/", ProviderCallbackView.as_view(), name="oidc_callback"),
]
