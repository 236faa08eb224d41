from django.urls import path

from accounts.views.signin import SignInView
from accounts.views.signout import SignOutView

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", SignOutView.as_view(), name="logout"),
]
