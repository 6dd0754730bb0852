"""The account page's API tokens in headless Chromium: create, copy once, use, revoke."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import BrowserContext, Dialog, Page, expect

from tests.e2e.support import screenshot
from tests.support import LiveServer


@pytest.fixture
def backend() -> str:
    """Tokens do not depend on the store: one backend is enough."""
    return "local"


def test_a_token_is_made_copied_used_and_revoked_on_the_account_page(
    context: BrowserContext, page: Page, e2e_server: LiveServer
) -> None:
    base = e2e_server.url
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.goto(f"{base}/account")
    expect(page.locator("#no-tokens")).to_have_text("You have no API tokens.")
    page.fill("input[name=name]", "Laptop uploader")
    page.fill("input[name=expires_days]", "30")
    page.get_by_role("button", name="Create token").click()

    field = page.locator("#new-token-secret")
    expect(field).to_have_value(re.compile(r"^mvt_[A-Za-z0-9_-]{43}$"))
    secret = field.input_value()
    page.locator("#new-token").get_by_role("button", name="Copy").click()
    expect(page.locator("#new-token-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "account-new-token")
    row = page.locator(".token-row")
    expect(row).to_have_count(1)
    expect(row.locator(".token-name")).to_have_text("Laptop uploader")
    expect(row).to_contain_text("never")  # not used yet

    # A script uses it; the list then says when.
    used = requests.get(f"{base}/api/files", headers={"Authorization": f"Bearer {secret}"},
                        timeout=30)
    assert used.status_code == 200, used.text
    page.goto(f"{base}/account")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    assert secret not in page.content()
    expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    shot = screenshot(page, "account-api-tokens")
    assert shot.stat().st_size > 10_000

    def accept(dialog: Dialog) -> None:
        """Confirm the revocation, after checking what is asked."""
        assert "Laptop uploader" in dialog.message
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status").first).to_contain_text("The token is revoked")
    expect(page.locator(".token-row")).to_have_count(0)
    refused = requests.get(f"{base}/api/files", headers={"Authorization": f"Bearer {secret}"},
                           timeout=30)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
