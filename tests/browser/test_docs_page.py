"""The /docs API explorer in a real headless Chromium (Debian's), driven by Playwright.

Run with `make test-browser` (which installs Chromium when missing); the default
suite deselects the `browser` marker.
"""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from myapp import create_app
from myapp.extensions import db
from tests.support.committed import committed_app
from tests.support.database import database_url_for_tests

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Flags for a sandboxed, offline machine (see the env notes): no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a long browser password"


@pytest.fixture
def browser_app(tmp_path):
    """The app on a database of its own, of the suite's kind: requests come from
    the browser through real threads, so no shared test transaction."""
    if database_url_for_tests().get_backend_name() == "postgresql":
        with committed_app("browser") as app:
            yield app
        return
    uri = f"sqlite:///{tmp_path / 'docs.db'}"  # a file: several threads, one database
    app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": uri})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live_server(browser_app):
    """The app on a real HTTP port on 127.0.0.1."""
    server = make_server("127.0.0.1", 0, browser_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test-browser` to install it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 2000})
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.on("requestfailed", lambda r: page.problems.append(f"failed: {r.url}"))
        yield page
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        browser.close()


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
    dialog.locator("input").first.fill(tokens["access_token"])
    dialog.locator("button.authorize").click()  # labelled "Apply credentials"
    dialog.locator("button.btn-done").click()

    status, me = execute(operation(page, "get", "/api/v1/users/me"))

    assert (status, me["username"], me["email"]) == ("200", "browser", "browser@example.com")
    assert page.problems == []
