"""The account console at /account: static HTML, CSS and JavaScript modules from
this package (no CDN, no build step, no inline script), talking to the API with
cookie transport. Every console path serves the same page; its script shows the
view the path names (``/account/verify?token=...`` is where the verification
email's link lands)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

STATIC = Path(__file__).parent / "static"
# The console's paths: email links land on verify, reset and confirm-email.
PAGES = (
    "signin",
    "register",
    "verify",
    "forgot",
    "reset",
    "confirm-email",
    "profile",
    "password",
    "sessions",
    "security",
    "passkeys",
    "linked",
    "delete",
)

blp = Blueprint(
    "console", __name__, url_prefix="/account", static_folder="static", static_url_path="/static"
)


@blp.get("")
def home() -> Response:
    return _page()


@blp.get("/<any(" + ", ".join(f'"{p}"' for p in PAGES) + "):page>")
def page(page: str) -> Response:
    return _page()


# One small document for every view, read once.
INDEX = (STATIC / "index.html").read_text()


def _page() -> Response:
    # text/html is Response's default. Never cached (a stale page would load stale
    # scripts): observability's no-store, set on every response but the docs, holds.
    return Response(INDEX)
