import pytest

from portal import tenancy
from tests.factories import MembershipFactory, TenantFactory, UserFactory


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Alpha", slug="alpha")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Bravo", slug="bravo")


@pytest.fixture
def msp_user(db):
    return UserFactory(username="msp", is_superuser=True)


def member(tenant, role, username=None):
    user = UserFactory(username=username or "%s-%s" % (tenant.slug, role))
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def admin_a(tenant_a):
    return member(tenant_a, tenancy.ADMIN)


@pytest.fixture
def viewer_a(tenant_a):
    return member(tenant_a, tenancy.VIEWER)


@pytest.fixture
def operator_a(tenant_a):
    return member(tenant_a, tenancy.OPERATOR)


@pytest.fixture
def admin_b(tenant_b):
    return member(tenant_b, tenancy.ADMIN)
