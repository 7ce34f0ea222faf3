from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "signin"
    verbose_name = "Sign-in"

    def ready(self):
        # The admin keeps what MSP staff need from allauth: linked Microsoft accounts and MFA authenticators
        # (delete a lost one to let its owner set MFA up again). Sign in with Microsoft is configured by
        # settings, not in the admin: a second application there would make the sign-in ambiguous, and
        # provider tokens are never stored. (Runs after the admin's autodiscovery registered them.)
        from allauth.mfa.signals import authentication_failed
        from allauth.socialaccount.models import SocialApp, SocialToken
        from django.contrib import admin

        from signin.lockout import count_wrong_mfa_code

        authentication_failed.connect(count_wrong_mfa_code, dispatch_uid="signin.count_wrong_mfa_code")

        for model in (SocialApp, SocialToken):
            if admin.site.is_registered(model):
                admin.site.unregister(model)
