"""A real OpenID Provider for the tests: panva's certified ``oidc-provider`` on
the machine's Node.js, configured by ``tests/oidc/provider.js``, and a browser
stand-in that signs in on its pages.

The provider is installed from the committed lock file (``npm ci``) the first
time it is needed, once for all test processes. A machine without Node.js fails
these tests loudly: nothing is skipped.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

from bench.common import free_port

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
INSTALLED = OIDC_DIR / "node_modules" / "oidc-provider" / "package.json"
CLIENT_ID = "myapp"
CLIENT_SECRET = "a test client secret that is long enough"  # noqa: S105 - a test peer's
PROVIDER = "test"  # our name for it in OIDC_PROVIDERS


def ensure_installed() -> None:
    """``npm ci`` once (a file lock keeps parallel test processes from racing)."""
    if INSTALLED.exists():
        return
    npm = shutil.which("npm")
    assert npm, "npm (Node.js) is required by the OpenID Connect tests: install Node.js 20+"
    with open(OIDC_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not INSTALLED.exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=300
            )


class OpenIdProvider:
    """The provider process, at ``issuer`` (http://127.0.0.1:PORT)."""

    def __init__(
        self, redirect_uris: list[str], jwks: dict | None = None, port: int | None = None
    ) -> None:
        ensure_installed()
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        clients = [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": redirect_uris,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ]
        env = dict(os.environ, PORT=str(self.port), CLIENTS=json.dumps(clients))
        if jwks is not None:
            env["JWKS"] = json.dumps(jwks)
        node = shutil.which("node")
        assert node, "node (Node.js) is required by the OpenID Connect tests"
        self.process = subprocess.Popen(
            [node, "provider.js"],
            cwd=OIDC_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._wait_until_up()

    def settings(self, **changes) -> dict:
        """Our OIDC_PROVIDERS entry for it."""
        return {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "label": "Sign in with Test ID",
            **changes,
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stderr.close()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"oidc-provider exited: {self.process.stderr.read()}")
            try:
                requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("oidc-provider did not start within 20 s")


class ProviderBrowser:
    """A person's browser at the provider: one cookie jar, redirects followed by
    hand, the dev login form filled in. Stops at our redirect URI."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def sign_in(self, authorize_url: str, login: str, *, stop_at: str) -> str:
        """Go through the provider's pages as ``login`` (the subject and email);
        the URL of the redirect back to us (``stop_at`` prefix)."""
        url = authorize_url
        for _ in range(10):
            if url.startswith(stop_at):
                return url
            response = self.http.get(url, allow_redirects=False, timeout=10)
            if response.status_code == 200:  # the login form
                action = re.search(r'action="([^"]+)"', response.text)
                assert action, response.text[:500]
                response = self.http.post(
                    urljoin(url, action.group(1)),
                    data={"prompt": "login", "login": login, "password": "any"},
                    allow_redirects=False,
                    timeout=10,
                )
            assert response.status_code in (302, 303), (response.status_code, response.text[:300])
            url = urljoin(url, response.headers["Location"])
        raise AssertionError(f"no redirect to {stop_at} after 10 hops")


class OidcActions:
    """Sign-ins through the provider as a browser does them: our authorize
    endpoint (test client: its cookie jar keeps ``myapp_oidc``), the provider's
    pages (``ProviderBrowser``), and back to our callback."""

    def __init__(self, client, provider: OpenIdProvider, base_url: str) -> None:
        self.client = client
        self.provider = provider
        self.callback_prefix = f"{base_url}/api/v1/auth/oidc/{PROVIDER}/callback"

    def authorize(self, next_path: str = "/account"):
        return self.client.get(f"/api/v1/auth/oidc/{PROVIDER}/authorize?next={next_path}")

    def callback_url(self, login: str, authorize_url: str | None = None) -> str:
        """Sign in at the provider as ``login``: the URL it sends the browser back to."""
        if authorize_url is None:
            response = self.authorize()
            assert response.status_code == 302, response.get_json()
            authorize_url = response.headers["Location"]
        return ProviderBrowser().sign_in(authorize_url, login, stop_at=self.callback_prefix)

    def follow(self, callback_url: str):
        """Our callback, as the browser arrives there."""
        return self.client.get(callback_url.removeprefix(self.callback_prefix.split("/api")[0]))

    def sign_in(self, login: str):
        """The whole flow; our callback's answer (a redirect)."""
        return self.follow(self.callback_url(login))

    def link(self, headers: dict[str, str], login: str):
        """Link ``login``'s provider account to the owner of ``headers`` (fresh)."""
        response = self.client.post(f"/api/v1/auth/oidc/{PROVIDER}/link", json={}, headers=headers)
        assert response.status_code == 200, response.get_json()
        return self.follow(self.callback_url(login, response.get_json()["authorize_url"]))
