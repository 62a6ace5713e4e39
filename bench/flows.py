"""Flows wrk cannot drive (each request needs the answer of the one before), from
Python clients in threads like bench/mfa_login.py: refresh rotation with the token
in the header against the cookie transport (CSRF header and Origin), and sign-in
with a passkey (options, a signature by a software authenticator, the answer)
against a password login from the same client."""

from __future__ import annotations

import http.client
import json
import queue
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from bench.common import call
from bench.mfa_login import THREADS, in_rounds, password_login
from tests.support.passkeys import SoftAuthenticator, register_passkey_over_http

CHAINS = THREADS * 2  # more sessions than threads: no thread waits for one


def post(base: str, path: str, body=None, headers: dict[str, str] | None = None):
    """(status, response headers, parsed JSON) of one POST."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        payload = json.dumps(body) if body is not None else None
        sent = {"Content-Type": "application/json", **(headers or {})}
        connection.request("POST", path, body=payload, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        return response.status, response.headers, json.loads(raw or b"null")
    finally:
        connection.close()


@dataclass
class Chain:
    """One session's current refresh token (and, with cookies, its CSRF value)."""

    refresh: str
    csrf: str = ""


class Pool:
    """Sessions (or authenticators) taken by one thread at a time."""

    def __init__(self, items) -> None:
        self.items: queue.Queue = queue.Queue()
        for item in items:
            self.items.put(item)

    def run(self, operation) -> None:
        item = self.items.get()
        try:
            operation(item)
        finally:
            self.items.put(item)


def header_chains(base: str, email: str, password: str) -> Pool:
    chains = []
    for _ in range(CHAINS):
        body = {"email": email, "password": password}
        status, tokens = call(base, "POST", "/api/v1/auth/login", body)
        assert status == 200, tokens
        chains.append(Chain(tokens["refresh_token"]))
    return Pool(chains)


def cookie_chains(base: str, email: str, password: str) -> Pool:
    chains = []
    for _ in range(CHAINS):
        body = {"email": email, "password": password}
        status, headers, answer = post(
            base, "/api/v1/auth/login", body, {"X-Token-Transport": "cookie"}
        )
        assert status == 200, answer
        chains.append(Chain(_refresh_cookie(headers), answer["csrf_token"]))
    return Pool(chains)


def _refresh_cookie(headers) -> str:
    cookies = SimpleCookie()
    for value in headers.get_all("Set-Cookie") or []:
        cookies.load(value)
    return cookies["myapp_refresh"].value


def refresh_by_header(base: str, chain: Chain) -> None:
    status, _, tokens = post(
        base, "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {chain.refresh}"}
    )
    assert status == 200, tokens
    chain.refresh = tokens["refresh_token"]


def refresh_by_cookie(base: str, origin: str, chain: Chain) -> None:
    headers = {
        "Cookie": f"myapp_refresh={chain.refresh}",
        "X-CSRF-Token": chain.csrf,
        "Origin": origin,  # the app's own (APP_BASE_URL), as its pages send
        "X-Token-Transport": "cookie",
    }
    status, answer_headers, answer = post(base, "/api/v1/auth/refresh", headers=headers)
    assert status == 200, answer
    chain.refresh, chain.csrf = _refresh_cookie(answer_headers), answer["csrf_token"]


def app_origin(env: dict[str, str]) -> str:
    """The app's APP_BASE_URL (the origin its pages, and so passkeys, belong to)."""
    return env.get("MYAPP_APP_BASE_URL", "http://127.0.0.1:5000")


def passkey_users(base: str, env: dict[str, str], password: str) -> Pool:
    """Users with one passkey each, on authenticators of the app's relying party."""
    origin = app_origin(env)
    rp_id = urlsplit(origin).hostname
    authenticators = []
    for n in range(CHAINS):
        email = f"passkey{n}@bench.example"
        user = {"email": email, "username": f"passkey{n}", "password": password}
        assert call(base, "POST", "/api/v1/auth/register", user)[0] == 201
        tokens = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})[1]
        authenticator = SoftAuthenticator(str(rp_id), origin)
        register_passkey_over_http(base, tokens["access_token"], authenticator)
        authenticators.append(authenticator)
    return Pool(authenticators)


def passkey_sign_in(base: str, authenticator: SoftAuthenticator) -> None:
    status, _, options = post(base, "/api/v1/auth/passkeys/login/options")
    assert status == 200, options
    body = {"credential": authenticator.get(options)}
    status, _, tokens = post(base, "/api/v1/auth/passkeys/login", body)
    assert status == 200 and "access_token" in tokens, (status, tokens)


def measure(
    base: str, env: dict[str, str], email: str, password: str, *, runs: int, duration: int
) -> dict[str, list[tuple[float, float, float]]]:
    """Round by round: refresh by header and by cookie, passkey and password sign-in."""
    by_header = header_chains(base, email, password)
    by_cookie = cookie_chains(base, email, password)
    passkeys = passkey_users(base, env, password)
    kinds = {
        "refresh (header)": lambda: by_header.run(lambda chain: refresh_by_header(base, chain)),
        "refresh (cookie)": lambda: by_cookie.run(
            lambda chain: refresh_by_cookie(base, app_origin(env), chain)
        ),
        "passkey sign-in": lambda: passkeys.run(lambda device: passkey_sign_in(base, device)),
        "password sign-in (Python client)": lambda: password_login(base, email, password),
    }
    return in_rounds(kinds, runs, duration)
