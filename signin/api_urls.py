"""The browsable API's login and logout (DRF names them ``rest_framework:login`` / ``:logout``).

The login is allauth's sign-in view itself, so it has the same lockouts, Microsoft button and MFA
step as /accounts/login/: a session from here can open the admin, so it must not be easier to get.
"""

from allauth.account.views import LoginView
from django.contrib.auth.views import LogoutView
from django.urls import path

app_name = "rest_framework"
urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
