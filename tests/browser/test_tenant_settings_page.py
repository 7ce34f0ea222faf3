"""The tenant's change page in headless Chromium at 1366 px, as a customer admin and as a viewer: a tenant with a
Self Service link saves; slug and active flag are read-only; client secrets are for admins. Screenshots in
test-results/."""

import pytest

from portal import tenancy
from portal.models import Tenant
from tests.admin.conftest import healthy_tenant
from tests.browser.pages import RESULTS_DIR
from tests.browser.test_admin_pages import log_in
from tests.conftest import member

pytestmark = pytest.mark.browser
LINK = "jamfselfservice://content?entity=policy&id=12&action=view"


def save_tenant_page(browser, base_url, username, tenant_pk, name):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        log_in(page, base_url, username, "/admin/portal/tenant/%d/change/" % tenant_pk)
        page.screenshot(path=str(RESULTS_DIR / ("%s.png" % name)), full_page=True)
        found = {
            "slug_input": page.locator("input[name=slug]").count(),
            "active_input": page.locator("input[name=is_active]").count(),
            "secret_rows": page.locator("#client_secrets-group").count(),
            "save": page.locator("input[name=_save]").count(),
        }
        if found["save"]:
            page.fill("input[name=support_contact]", "help@contoso.example")
            page.click("input[name=_save]")
            page.wait_for_load_state("load")
            found["message"] = page.locator("ul.messagelist").inner_text() if page.locator("ul.messagelist").count() \
                else page.locator(".errornote").all_inner_texts()
            page.screenshot(path=str(RESULTS_DIR / ("%s-saved.png" % name)), full_page=True)
        return found
    finally:
        context.close()


def test_customer_admin_saves_the_tenant_page(browser, live_server, transactional_db):
    tenant = healthy_tenant("Contoso Ltd", "contoso", n_macs=0, self_service_registration_url=LINK)
    member(tenant, tenancy.ADMIN, username="contoso-admin")
    member(tenant, tenancy.VIEWER, username="contoso-viewer")
    found = browser.run(save_tenant_page, live_server.url, "contoso-admin", tenant.pk, "admin-tenant-settings")
    assert found["slug_input"] == 0 and found["active_input"] == 0  # shown read-only
    assert found["secret_rows"] == 1
    assert "was changed successfully" in found["message"], found
    tenant = Tenant.objects.get(pk=tenant.pk)
    assert tenant.support_contact == "help@contoso.example" and tenant.self_service_registration_url == LINK
    assert (tenant.slug, tenant.is_active) == ("contoso", True)

    found = browser.run(save_tenant_page, live_server.url, "contoso-viewer", tenant.pk, "admin-tenant-viewer")
    assert found["secret_rows"] == 0 and found["save"] == 0
