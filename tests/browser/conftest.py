"""Browser tests' fixtures: the app on a real port, and headless Chromium (Debian's)
driven by Playwright. `make test-browser` installs Chromium when missing."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from myapp import create_app
from myapp.extensions import db
from tests.support.committed import committed_app
from tests.support.database import database_url_for_tests

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
    """The app on a real HTTP port on 127.0.0.1, served as ``http://localhost:PORT``:
    its APP_BASE_URL (email links, the origin cookie transport trusts) and its
    passkeys' relying party. Browsers refuse an IP address as an RP ID, and treat
    http://localhost as a secure context, where WebAuthn works without TLS."""
    server = make_server("127.0.0.1", 0, browser_app, threaded=True)
    base = f"http://localhost:{server.server_port}"
    browser_app.config.update(
        APP_BASE_URL=base, WEBAUTHN_RP_ID="localhost", WEBAUTHN_ORIGINS=[base]
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser():
    """Headless Chromium (Debian's), closed after the test."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test-browser` to install it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, tmp_path):
    """A page that records console errors, uncaught exceptions and failed requests
    in ``page.problems``; a screenshot of where it ended is left in tmp_path."""
    context = browser.new_context(viewport={"width": 1280, "height": 2000})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: _is_problem(m) and page.problems.append(m.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("requestfailed", lambda r: page.problems.append(f"failed: {r.url}"))
    yield page
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()


def _is_problem(message) -> bool:
    """A console error, except Chromium's note of an HTTP 4xx answer: the console
    meets those on purpose (a wrong password is a 401) and shows their detail."""
    expected = message.text.startswith(
        "Failed to load resource: the server responded with a status of 4"
    )
    return message.type == "error" and not expected
