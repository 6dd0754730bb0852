"""The API reference at /api/docs: the vendored Swagger UI renders the app's own OpenAPI
document under the page's Content-Security-Policy, with no violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import screenshot
from tests.support import LiveServer

# Recorded from the first script on: a violation the console would not show is still seen.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.mark.parametrize("backend", ["local"])
def test_the_docs_page_renders_every_operation_without_csp_violations(
    page: Page, e2e_server: LiveServer
) -> None:
    page.add_init_script(RECORD_VIOLATIONS)
    answer = page.goto(f"{e2e_server.url}/api/docs")
    assert answer is not None and answer.status == 200
    assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
    assert "'unsafe-eval'" not in answer.headers["content-security-policy"]
    document = page.request.get(f"{e2e_server.url}/api/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())

    rendered = page.locator(".opblock")
    expect(rendered).to_have_count(operations, timeout=30_000)
    expect(page.locator(".opblock-summary-path", has_text="/api/uploads/{upload_id}/complete")
           ).to_be_visible()
    # Opening one shows its body's schema and its refusals.
    page.locator(".opblock-post", has_text="/api/uploads").first.locator(
        ".opblock-summary").click()
    expect(page.locator(".responses-table").first).to_contain_text("413")
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    screenshot(page, "api-docs")
    assert page.evaluate("window.cspViolations") == []
