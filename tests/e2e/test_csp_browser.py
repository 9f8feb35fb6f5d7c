"""The Content-Security-Policy in real headless Chromium: Swagger UI still works under it.

Swagger UI is the page most likely to break under ``script-src 'self'`` (its set-up script is
usually inline); Chromium reports every blocked script, style or image on the console with the
words "Content Security Policy", and fires ``securitypolicyviolation`` in the page.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PASSWORD
from tests.factories import ClinicFactory, ClinicianFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_swagger_ui_renders_for_staff_under_the_csp_without_a_violation(page: Page, live_server) -> None:
    ClinicianFactory(clinic=ClinicFactory(), user__username="dr-api")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    # Also the page's own event, in case a violation is not written to the console.
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )

    page.goto(f"{live_server.url}/admin/login/?next=/api/docs/")
    page.get_by_label("Username").fill("dr-api")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda r: r.url == f"{live_server.url}/api/docs/") as docs:
        page.get_by_role("button", name="Log in").click()
    assert "script-src 'self'" in docs.value.headers["content-security-policy"]
    # Swagger UI built the page from the schema: the title, and the patients' operations.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Treatment-course tracker API")
    operation = page.locator(".opblock", has_text="/api/patients/").first
    expect(operation).to_be_visible()
    operation.locator(".opblock-summary").click()
    expect(operation.locator(".opblock-body")).to_be_visible()

    assert [text for text in console if "Content Security Policy" in text] == []
    assert page.evaluate("window.__cspViolations") == []
