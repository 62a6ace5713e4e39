"""Security notifications: the owner's address hears of every change to how the
account is reached, as text and escaped HTML, and never with a token in it."""

from __future__ import annotations

import pytest

from tests.conftest import token_from
from tests.factories import DEFAULT_PASSWORD

NEW_PASSWORD = "a brand new passphrase"


def change_password(client, user, auth_headers, outbox):
    client.put(
        "/api/v1/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth_headers,
    )


def reset_password(client, user, auth_headers, outbox):
    client.post("/api/v1/auth/password-reset", json={"email": user.email})
    client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token_from(outbox[-1]), "new_password": NEW_PASSWORD},
    )


def delete_account(client, user, auth_headers, outbox):
    client.delete("/api/v1/users/me", json={"password": DEFAULT_PASSWORD}, headers=auth_headers)


@pytest.mark.parametrize(
    ("change", "subject"),
    [
        (change_password, "Your password was changed"),
        (reset_password, "Your password was reset"),
        (delete_account, "Your account was deleted"),
    ],
    ids=["password-changed", "password-reset", "account-deleted"],
)
def test_change_when_made_notifies_the_owner_without_a_token(
    client, user, auth_headers, outbox, change, subject
):
    change(client, user, auth_headers, outbox)

    notice = outbox[-1]
    assert (notice.to, notice.subject) == ("ada@example.com", subject)
    assert notice.html is not None and notice.html.startswith("<!doctype html>")
    assert "token" not in notice.body and "token" not in notice.html
