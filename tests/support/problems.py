"""The shape every error answer has (RFC 9457), checked in one place."""

from __future__ import annotations

from http import HTTPStatus


def assert_problem(response, status: int) -> dict:
    """``response`` is a ``status`` problem+json; its body, for the test's own checks."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    # "about:blank": the status code is the whole type, so the title is its phrase.
    assert (body["type"], body["title"], body["status"]) == (
        "about:blank",
        HTTPStatus(status).phrase,
        status,
    )
    assert body["detail"]
    return body
