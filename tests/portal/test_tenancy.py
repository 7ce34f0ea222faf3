import pytest

from devices.models import Computer, UserAccount
from portal import tenancy
from portal.models import Tenant
from tests.factories import ComputerFactory, UserAccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_members_see_only_their_tenants(tenant_a, tenant_b, viewer_a, admin_b, msp_user):
    ca, cb = ComputerFactory(tenant=tenant_a), ComputerFactory(tenant=tenant_b)
    UserAccountFactory(computer=ca)
    UserAccountFactory(computer=cb)
    assert list(Tenant.objects.for_user(viewer_a)) == [tenant_a]
    assert list(Computer.objects.for_user(viewer_a)) == [ca]
    assert list(Computer.objects.for_user(admin_b)) == [cb]
    assert [u.computer_id for u in UserAccount.objects.for_user(viewer_a)] == [ca.pk]
    assert Computer.objects.for_user(msp_user).count() == 2


def test_roles_rank(tenant_a, viewer_a, operator_a, admin_a):
    assert list(Tenant.objects.for_user(viewer_a, tenancy.OPERATOR)) == []
    assert list(Tenant.objects.for_user(operator_a, tenancy.OPERATOR)) == [tenant_a]
    assert list(Tenant.objects.for_user(operator_a, tenancy.ADMIN)) == []
    assert tenancy.has_role(admin_a, tenant_a.pk, tenancy.ADMIN)
    assert not tenancy.has_role(viewer_a, tenant_a.pk, tenancy.OPERATOR)


def test_inactive_and_anonymous_users_see_nothing(tenant_a, admin_a, msp_user):
    from django.contrib.auth.models import AnonymousUser

    ComputerFactory(tenant=tenant_a)
    admin_a.is_active = False
    msp_user.is_active = False
    assert Computer.objects.for_user(admin_a).count() == 0
    assert Computer.objects.for_user(msp_user).count() == 0
    assert Computer.objects.for_user(AnonymousUser()).count() == 0
    assert Computer.objects.for_user(UserFactory()).count() == 0
