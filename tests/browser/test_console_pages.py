"""Every account console page, audited by axe-core in real Chromium at a phone's
width and a desktop's; `make screenshots` also writes each to docs/screenshots/.

axe-core comes from the npm registry (tests/browser/axe, with its lock file),
installed by `make test-browser`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bench.common import call

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")  # a folder: `make screenshots`
WIDTHS = {"phone": 375, "desktop": 1280}
PASSWORD = "a long browser password"
# (path, heading shown): signed-out pages first, then the signed-in ones.
PUBLIC = [
    ("/account/signin", "Sign in"),
    ("/account/register", "Create an account"),
    ("/account/forgot", "Forgot your password?"),
    ("/account/reset?token=example", "Choose a new password"),
    # Links with a bad token: the page says so (the problem's detail).
    ("/account/verify?token=example", "Confirm your email"),
    ("/account/confirm-email?token=example", "Confirm your new email"),
]
PRIVATE = [
    ("/account", "Hello, ada"),
    ("/account/profile", "Profile"),
    ("/account/password", "Change your password"),
    ("/account/sessions", "Sessions"),
    ("/account/security", "Two-factor sign-in"),
    ("/account/passkeys", "Passkeys"),
    ("/account/linked", "Linked accounts"),
    ("/account/delete", "Delete your account"),
]


def audit(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is."""
    if not AXE.exists():
        pytest.fail(f"axe-core not installed at {AXE}: run `make test-browser`")
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_console_pages_when_audited_have_no_serious_accessibility_violations(
    live_server, browser, width
):
    # The audit script is injected: this context alone lets it past the page's CSP.
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    body = {"email": "ada@example.com", "username": "ada", "password": PASSWORD}
    assert call(live_server, "POST", "/api/v1/auth/register", body)[0] == 201
    found = {}
    for path, heading in PUBLIC:
        page.goto(live_server + path)
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        found[path] = audit(page)
        shoot(page, path, width)
    page.goto(f"{live_server}/account/signin")
    page.get_by_label("Email", exact=True).fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Hello, ada")).to_be_visible()
    for path, heading in PRIVATE:
        page.goto(live_server + path)
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        found[path] = audit(page)
        shoot(page, path, width)
    context.close()

    assert {path: violations for path, violations in found.items() if violations} == {}


def shoot(page, path: str, width: int) -> None:
    if not SCREENSHOTS:
        return
    name = path.split("?")[0].strip("/").replace("/", "-") or "account"
    label = next(key for key, value in WIDTHS.items() if value == width)
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
