"""The account console (/account) in real headless Chromium, end to end against a
served app: what a person does, and what the page shows them.

Run with `make test-browser` (SQLite, then PostgreSQL).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from bench.common import call
from myapp.auth.factors import time_step, totp_code
from myapp.extensions import mail
from tests.support.oidc import PROVIDER as OIDC_PROVIDER
from tests.support.oidc import OpenIdProvider

pytestmark = pytest.mark.browser

EMAIL, USERNAME = "ada@example.com", "ada"
PASSWORD = "a long browser password"
NEW_PASSWORD = "another long browser password"


def link_in_latest_email(app, to: str, subject: str) -> str:
    """The console link of the newest email with this subject sent to ``to``."""
    with app.app_context():
        for message in reversed(mail.outbox):
            if message.to == to and message.subject == subject:
                return re.search(r"https?://\S+/account/\S+token=[\w-]+", message.body).group(0)
    raise AssertionError(f"no {subject!r} email to {to}")


def code_for(secret: str, steps_ahead: int = 0) -> str:
    return totp_code(secret, time_step(datetime.now(UTC)) + steps_ahead)


def fill_and_submit(page, fields: dict[str, str], button: str) -> None:
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name=button, exact=True).click()


def refresh_cookie_value(page) -> str:
    cookies = page.context.cookies()
    return next(c["value"] for c in cookies if c["name"] == "myapp_refresh")


def test_console_when_used_end_to_end_walks_an_account_through_its_life(
    live_server, page, browser_app
):
    # Arrive signed out: the sign-in page.
    page.goto(f"{live_server}/account")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).to_be_hidden()  # signed out

    # Register, then open the link of the email actually sent.
    page.get_by_role("link", name="Create an account").click()
    fill_and_submit(
        page, {"Email": EMAIL, "Username": USERNAME, "Password": PASSWORD}, "Create account"
    )
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.goto(link_in_latest_email(browser_app, EMAIL, "Confirm your email address"))
    expect(page.get_by_text("Your email address is confirmed.")).to_be_visible()

    # Sign in: the refresh token lives in an httpOnly cookie script cannot read.
    page.goto(f"{live_server}/account/signin")
    fill_and_submit(page, {"Email": EMAIL, "Password": PASSWORD}, "Sign in")
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).to_be_visible()
    script_cookies = page.evaluate("document.cookie")
    assert refresh_cookie_value(page) not in script_cookies
    assert "myapp_refresh" not in script_cookies and "myapp_csrf=" in script_cookies

    # Turn on two-factor sign-in with the QR code's secret.
    page.get_by_role("link", name="Two-factor sign-in").click()
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name="QR code of your authenticator key")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    fill_and_submit(page, {"Code from the app": code_for(secret)}, "Turn on")
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    recovery_codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(recovery_codes) == 10

    # Sign out, and back in with a code (the next step's: this one is spent).
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    fill_and_submit(page, {"Email": EMAIL, "Password": PASSWORD}, "Sign in")
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    fill_and_submit(page, {"Code": code_for(secret, 1)}, "Continue")
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()

    # Change the password (the sign-in's token is fresh).
    page.get_by_role("link", name="Password").click()
    fill_and_submit(
        page, {"Current password": PASSWORD, "New password": NEW_PASSWORD}, "Change password"
    )
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()

    # Another device signs in; this page sees it and revokes it.
    status, first = call(
        live_server, "POST", "/api/v1/auth/login", {"email": EMAIL, "password": NEW_PASSWORD}
    )
    status, other = call(
        live_server,
        "POST",
        "/api/v1/auth/login/mfa",
        {"mfa_token": first["mfa_token"], "recovery_code": recovery_codes[0]},
    )
    assert status == 200
    page.get_by_role("link", name="Sessions").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="HeadlessChrome")).to_contain_text("This device")
    rows.filter(has_text="Python-urllib").get_by_role("button", name="Revoke").click()
    expect(rows).to_have_count(1)
    assert call(live_server, "GET", "/api/v1/users/me", token=other["access_token"])[0] == 401

    # Forgot the password: reset it through the emailed link.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_role("link", name="Forgot your password?").click()
    fill_and_submit(page, {"Email": EMAIL}, "Send a reset link")
    expect(page.locator("#status")).to_contain_text("If an active account uses this address")
    page.goto(_wait_for_link(browser_app, EMAIL, "Reset your password"))
    fill_and_submit(page, {"New password": PASSWORD}, "Set password")
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()

    # Sign in with a recovery code, and delete the account.
    page.get_by_role("link", name="Sign in", exact=True).click()
    fill_and_submit(page, {"Email": EMAIL, "Password": PASSWORD}, "Sign in")
    fill_and_submit(page, {"Code": recovery_codes[1]}, "Continue")
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()
    page.get_by_role("link", name="Delete account").click()
    fill_and_submit(page, {"Password": PASSWORD}, "Delete my account")
    expect(page.get_by_role("heading", name="Account deleted")).to_be_visible()
    assert (
        call(live_server, "POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})[0]
        == 401
    )
    assert page.problems == []


def test_console_when_an_action_fails_shows_the_problem_detail(live_server, page):
    page.goto(f"{live_server}/account/signin")

    fill_and_submit(
        page, {"Email": "nobody@example.com", "Password": "not the password"}, "Sign in"
    )

    expect(page.locator("#status")).to_have_text("Invalid credentials")
    expect(page.locator("#status")).to_have_class("error")


def test_console_when_used_by_keyboard_alone_signs_in_and_confirms_for_a_fresh_action(
    live_server, page
):
    body = {"email": EMAIL, "username": USERNAME, "password": PASSWORD}
    assert call(live_server, "POST", "/api/v1/auth/register", body)[0] == 201
    page.goto(f"{live_server}/account/signin")
    for _ in range(5):  # Tab to the first field, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "field-email":
            break
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()

    # After a reload the page holds a refreshed (not fresh) token: changing the
    # password asks for it again (POST /auth/reauthenticate), then goes through.
    page.goto(f"{live_server}/account/password")
    fill_and_submit(
        page, {"Current password": PASSWORD, "New password": NEW_PASSWORD}, "Change password"
    )
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    fill_and_submit(page, {"Password": PASSWORD}, "Confirm")
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    status, _ = call(
        live_server, "POST", "/api/v1/auth/login", {"email": EMAIL, "password": NEW_PASSWORD}
    )
    assert status == 200
    assert page.problems == []


def _about_web_fonts(problem: str) -> bool:
    return "fonts.googleapis.com" in problem or "ERR_NAME_NOT_RESOLVED" in problem


def _wait_for_link(app, to: str, subject: str) -> str:
    """The reset email is written by the mail worker's preparer, just after the
    request commits (eager delivery in testing): wait for it briefly."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return link_in_latest_email(app, to, subject)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def add_virtual_authenticator(page) -> None:
    """Chromium's virtual authenticator (DevTools' WebAuthn domain) on this page: a
    platform passkey device with resident keys that verifies its user."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )


def test_console_when_passkeys_used_enrols_signs_in_without_password_and_removes(live_server, page):
    body = {"email": EMAIL, "username": USERNAME, "password": PASSWORD}
    assert call(live_server, "POST", "/api/v1/auth/register", body)[0] == 201
    page.goto(f"{live_server}/account/signin")
    add_virtual_authenticator(page)
    fill_and_submit(page, {"Email": EMAIL, "Password": PASSWORD}, "Sign in")
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()

    # Enrol a passkey (the sign-in's token is fresh), then rename it.
    page.get_by_role("link", name="Passkeys").click()
    expect(page.get_by_text("No passkeys yet.")).to_be_visible()
    fill_and_submit(page, {"Name": "This laptop"}, "Add passkey")
    expect(page.locator("#status")).to_have_text("Added This laptop.")
    page.get_by_role("button", name="Rename This laptop").click()
    fill_and_submit(page, {"Name": "Work laptop"}, "Save")
    expect(page.locator("#passkeys tbody tr")).to_have_count(1)
    expect(page.locator("#passkeys tbody tr")).to_contain_text("Work laptop")

    # Sign out, and back in with the passkey alone: no email, no password.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()

    # A password sign-in now asks for the passkey as its second step.
    page.get_by_role("button", name="Sign out", exact=True).click()
    fill_and_submit(page, {"Email": EMAIL, "Password": PASSWORD}, "Sign in")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()

    # After a reload the token is not fresh: removing asks to confirm, by passkey.
    page.goto(f"{live_server}/account/passkeys")
    page.get_by_role("button", name="Remove Work laptop").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_text("No passkeys yet.")).to_be_visible()

    # The account is back to a password alone.
    status, tokens = call(
        live_server, "POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD}
    )
    assert status == 200 and "access_token" in tokens
    assert page.problems == []


def test_console_when_signing_in_with_a_provider_lands_signed_in_with_the_account_linked(
    live_server, page, browser_app
):
    # A real OpenID Provider that knows this server's callback.
    provider = OpenIdProvider([f"{live_server}/api/v1/auth/oidc/{OIDC_PROVIDER}/callback"])
    browser_app.config["OIDC_PROVIDERS"] = {OIDC_PROVIDER: provider.settings()}
    try:
        page.goto(f"{live_server}/account/signin")
        page.get_by_role("button", name="Sign in with Test ID").click()

        # The provider's own sign-in page, then back to the console, signed in.
        page.locator("input[name=login]").fill("grace@example.com")
        page.locator("input[name=password]").fill("any password")
        page.locator("button[type=submit]").click()
        expect(page.get_by_role("heading", name="Hello, grace")).to_be_visible()

        page.get_by_role("link", name="Linked accounts").click()
        expect(page.locator("#identities tbody tr")).to_contain_text("grace@example.com")

        # An address no provider vouches for creates nothing, and the page says why.
        page.get_by_role("button", name="Sign out", exact=True).click()
        page.context.clear_cookies(domain="127.0.0.1")  # sign out at the provider too
        page.get_by_role("button", name="Sign in with Test ID").click()
        page.locator("input[name=login]").fill("unverified-eve@example.com")
        page.locator("input[name=password]").fill("any password")
        page.locator("button[type=submit]").click()
        expect(page.locator("#status")).to_contain_text("has not verified your email address")
        # The provider's dev login page asks for web fonts this offline machine cannot
        # fetch: the test peer's problem, not the console's.
        assert [p for p in page.problems if not _about_web_fonts(p)] == []
    finally:
        provider.stop()
