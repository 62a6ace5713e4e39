"""The /docs API explorer in a real headless Chromium (Debian's), driven by Playwright.

Run with `make test-browser` (which installs Chromium when missing); the default
suite deselects the `browser` marker.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

PASSWORD = "a long browser password"


def operation(page, method: str, path: str):
    """The Swagger UI block of one operation, expanded."""
    block = page.locator(f'.opblock-{method}:has(.opblock-summary-path[data-path="{path}"])')
    block.locator(".opblock-summary").first.click()
    return block


def execute(block, body: dict | None = None) -> tuple[str, dict]:
    """Try it out (with a JSON body), execute, return the status and JSON shown."""
    block.get_by_role("button", name="Try it out").click()
    if body is not None:
        block.locator("textarea.body-param__text").fill(json.dumps(body))
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    text = block.locator(".live-responses-table .highlight-code pre").first.inner_text()
    return status.inner_text().strip(), json.loads(text)


def test_docs_page_when_opened_lists_operations_without_errors(live_server, page):
    response = page.goto(f"{live_server}/docs")
    page.locator(".opblock").first.wait_for()

    tags = page.locator(".opblock-tag").all_inner_texts()
    assert response.status == 200
    assert any(tag.startswith("auth") for tag in tags)
    assert any(tag.startswith("users") for tag in tags)
    assert page.locator('[data-path="/api/v1/users/me"]').count() >= 1
    assert page.problems == []


def test_docs_page_when_walked_registers_logs_in_and_reads_me(live_server, page, tmp_path):
    page.goto(f"{live_server}/docs")
    page.locator(".opblock").first.wait_for()

    status, user = execute(
        operation(page, "post", "/api/v1/auth/register"),
        {"email": "browser@example.com", "username": "browser", "password": PASSWORD},
    )
    assert (status, user["email"]) == ("201", "browser@example.com")

    status, tokens = execute(
        operation(page, "post", "/api/v1/auth/login"),
        {"email": "browser@example.com", "password": PASSWORD},
    )
    assert status == "200"

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    # The bearer scheme's form (refresh and logout also list the cookie's).
    bearer_form = dialog.locator("form", has_text="bearerAuth")
    bearer_form.locator("input").first.fill(tokens["access_token"])
    bearer_form.locator("button.authorize").click()  # labelled "Apply credentials"
    dialog.locator("button.btn-done").first.click()

    status, me = execute(operation(page, "get", "/api/v1/users/me"))

    assert (status, me["username"], me["email"]) == ("200", "browser", "browser@example.com")
    assert page.problems == []
