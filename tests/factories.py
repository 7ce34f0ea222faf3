"""factory-boy factories for the portal's models."""

import datetime

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from devices.models import Computer, UserAccount
from portal import tenancy
from portal.models import ClientSecret, Membership, Tenant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: "user%d" % n)
    email = factory.LazyAttribute(lambda o: "%s@example.com" % o.username)
    is_staff = True
    password = factory.django.Password("pw-for-tests-1")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: "Tenant %d" % n)
    slug = factory.Sequence(lambda n: "tenant-%d" % n)
    entra_tenant = factory.LazyAttribute(lambda o: "%s.onmicrosoft.com" % o.slug)
    client_id = "11111111-2222-4333-8444-555555555555"
    use_own_app = True  # the per-tenant app (legacy / override); partner-mode tests clear it


class ClientSecretFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClientSecret

    tenant = factory.SubFactory(TenantFactory)
    value = factory.Sequence(lambda n: "secret-value-%d~abc" % n)
    expires_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=180))


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = tenancy.VIEWER


class ComputerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Computer

    tenant = factory.SubFactory(TenantFactory)
    jamf_id = factory.Sequence(str)
    udid = factory.Sequence(lambda n: "00000000-0000-0000-0000-%012d" % n)
    serial_number = factory.Sequence(lambda n: "C02X%06d" % n)
    name = factory.Sequence(lambda n: "Mac %d" % n)
    last_check_in = factory.LazyFunction(timezone.now)
    last_inventory_update = factory.LazyFunction(timezone.now)
    os_name = "macOS"
    os_version = "15.1"
    filevault_state = "ENCRYPTED"
    sip = "ENABLED"
    gatekeeper = "APP_STORE_AND_IDENTIFIED_DEVELOPERS"
    auto_login_disabled = True


class UserAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserAccount

    computer = factory.SubFactory(ComputerFactory)
    username = factory.Sequence(lambda n: "user%d" % n)
