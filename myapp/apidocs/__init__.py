"""The interactive API explorer at /docs: Swagger UI served from the installed
``swagger-ui-py`` package (no CDN: it works offline), pointed at our OpenAPI
document. No inline script, so a strict Content-Security-Policy can cover it."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from flask import Blueprint, Response, render_template, send_from_directory

SWAGGER_UI_DIST = Path(swagger_ui.__file__).parent / "static"

blp = Blueprint(
    "apidocs",
    __name__,
    url_prefix="/docs",
    static_folder="static",
    static_url_path="/assets",
    template_folder="templates",
)


@blp.get("")
def explorer() -> str:
    return render_template("apidocs/explorer.html")


@blp.get("/swagger-ui/<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    # send_from_directory refuses paths that leave the directory.
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=3600)
