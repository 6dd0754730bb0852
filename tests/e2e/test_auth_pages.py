"""First run and signing in, in headless Chromium."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.support import screenshot, sign_in_page
from tests.support import PASSWORD, LiveServer


def test_first_run_then_sign_out_and_in(context: BrowserContext, e2e_server: LiveServer) -> None:
    """With no account yet, the page asks for the owner's; then sign out and back in."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    base = e2e_server.url

    tab.goto(f"{base}/")
    expect(tab.get_by_role("heading", name="Welcome to MovieVault")).to_be_visible()
    screenshot(tab, "first-run")
    tab.fill("input[name=username]", "owner")
    tab.fill("input[name=password]", "a long enough secret")
    tab.fill("input[name=password_confirm]", "a long enough secret")
    tab.get_by_role("button", name="Create account").click()
    tab.wait_for_url(f"{base}/")
    expect(tab.locator(".whoami")).to_have_text("owner")
    expect(tab.locator(".empty-state")).to_contain_text("Your library is empty.")

    tab.get_by_role("button", name="Sign out").click()
    tab.wait_for_url(re.compile(r"/login"))
    tab.fill("input[name=username]", "owner")
    tab.fill("input[name=password]", "not the secret")
    tab.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    expect(tab.get_by_role("alert")).to_have_text("That username and password do not match.")
    expect(tab.locator(".whoami")).to_have_count(0)
    screenshot(tab, "login-failed")
    tab.fill("input[name=password]", "a long enough secret")
    tab.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    tab.wait_for_url(f"{base}/")
    expect(tab.locator(".whoami")).to_have_text("owner")
    # A refused sign-in is a page with a message, not a failed request.
    assert not [e for e in errors if "status of 401" not in e], errors


def test_account_page_changes_the_password_and_signs_out_the_other_browser(
    browser: Browser, page: Page, e2e_server: LiveServer
) -> None:
    """From the account page: a new password ends the other browser's session, not this one;
    "Sign out everywhere" then ends this one too."""
    base = e2e_server.url
    other = browser.new_context()
    phone = other.new_page()
    sign_in_page(phone, base)

    page.locator(".whoami").click()
    page.wait_for_url(f"{base}/account")
    expect(page.locator("#usage")).to_contain_text("Your library holds 0 bytes")
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", "a brand new passphrase")
    page.fill("input[name=new_password_confirm]", "a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Every other device is signed out")
    screenshot(page, "account-password-changed")

    phone.goto(f"{base}/")
    phone.wait_for_url(re.compile(r"/login"))
    page.goto(f"{base}/")
    expect(page.locator(".whoami")).to_have_text("alice")

    page.goto(f"{base}/account")
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_url(re.compile(r"/login"))
    expect(page.get_by_role("status")).to_contain_text("signed out on every device")
    other.close()
