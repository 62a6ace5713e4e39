"""Security notifications: the owner's address hears of every change to how the
account is reached, as text and escaped HTML, and never with a token in it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from myapp.auth.models import OidcIdentity
from myapp.extensions import db
from tests.conftest import mails, token_from
from tests.factories import DEFAULT_PASSWORD

NEW_PASSWORD = "a brand new passphrase"


# Each change as a test makes it: (request, client, auth_headers); other fixtures on demand.
def change_password(request, client, auth_headers):
    client.put(
        "/api/v1/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth_headers,
    )


def ask_for_reset_link(request, client, auth_headers):
    client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"})


def reset_password(request, client, auth_headers):
    ask_for_reset_link(request, client, auth_headers)
    link = request.getfixturevalue("outbox")[-1]
    client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token_from(link), "new_password": NEW_PASSWORD},
    )


def delete_account(request, client, auth_headers):
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
    request, client, auth_headers, outbox, change, subject
):
    change(request, client, auth_headers)

    notice = outbox[-1]
    assert (notice.to, notice.subject) == ("ada@example.com", subject)
    assert notice.html is not None and notice.html.startswith("<!doctype html>")
    assert "token" not in notice.body and "token" not in notice.html


# -- every email's wording, word for word ---------------------------------------------
# What the user reads is behaviour: each kind of email is compared with its approved
# text in tests/api/emails/ (tokens in links masked). A change of wording shows there,
# in review. After a deliberate change: MYAPP_APPROVE_EMAILS=1 pytest <this file>.
EMAILS = Path(__file__).parent / "emails"
TOKEN_IN_LINK = re.compile(r"([?&]token=)[\w-]+")


def register(request, client, auth_headers):
    body = {"email": "grace@example.com", "username": "grace", "password": NEW_PASSWORD}
    client.post("/api/v1/auth/register", json=body)


def ask_for_new_address(request, client, auth_headers):
    client.patch("/api/v1/users/me", json={"email": "lovelace@example.com"}, headers=auth_headers)


def confirm_new_address(request, client, auth_headers):
    ask_for_new_address(request, client, auth_headers)
    link = request.getfixturevalue("outbox")[-1]
    client.post("/api/v1/users/me/email/confirm", json={"token": token_from(link)})


def enrol(request, client, auth_headers):
    request.getfixturevalue("enrolled")


def use_recovery_code(request, client, auth_headers):
    enrolled, auth = request.getfixturevalue("enrolled"), request.getfixturevalue("auth")
    token = auth.mfa_token_for(request.getfixturevalue("user"))
    auth.login_mfa(token, recovery_code=enrolled.recovery_codes[0])


def turn_off_two_factor(request, client, auth_headers):
    enrolled = request.getfixturevalue("enrolled")
    body = {"code": enrolled.authenticator.code()}
    client.delete("/api/v1/auth/mfa/totp", json=body, headers=enrolled.headers)


def admin_resets_two_factor(request, client, auth_headers):
    request.getfixturevalue("enrolled")
    user, admin_headers = (request.getfixturevalue(name) for name in ("user", "admin_headers"))
    client.delete(f"/api/v1/users/{user.id}/mfa", headers=admin_headers)


def add_passkey(request, client, auth_headers):
    request.getfixturevalue("passkey")


def remove_passkey(request, client, auth_headers):
    passkey = request.getfixturevalue("passkey")
    client.delete(f"/api/v1/auth/passkeys/{passkey.id}", headers=auth_headers)


def link_provider_account(request, client, auth_headers):
    request.getfixturevalue("oidc").link(auth_headers, "ada-at-provider@example.com")


def unlink_provider_account(request, client, auth_headers):
    link_provider_account(request, client, auth_headers)
    identity = db.session.scalars(select(OidcIdentity)).one()
    client.delete(f"/api/v1/users/me/identities/{identity.id}", headers=auth_headers)


WORDING_CASES = {
    "email_verification": register,
    "password_reset": ask_for_reset_link,
    "password_changed": change_password,
    "password_reset_completed": reset_password,
    "account_deleted": delete_account,
    "email_change": ask_for_new_address,
    "email_changed": confirm_new_address,
    "mfa_enabled": enrol,
    "mfa_recovery_code_used": use_recovery_code,
    "mfa_disabled": turn_off_two_factor,
    "mfa_reset": admin_resets_two_factor,
    "passkey_added": add_passkey,
    "passkey_removed": remove_passkey,
    "oidc_linked": link_provider_account,
    "oidc_unlinked": unlink_provider_account,
}


def as_read(message) -> str:
    text = f"Subject: {message.subject}\nTo: {message.recipient}\n\n{message.text_body}\n"
    return TOKEN_IN_LINK.sub(r"\1<token>", text)


@pytest.mark.parametrize("kind", sorted(WORDING_CASES))
def test_email_when_sent_reads_as_approved(request, client, auth_headers, kind):
    WORDING_CASES[kind](request, client, auth_headers)

    (message,) = mails(kind)
    approved = EMAILS / f"{kind}.txt"
    if os.environ.get("MYAPP_APPROVE_EMAILS"):
        approved.write_text(as_read(message))
    assert as_read(message) == approved.read_text()


def test_approved_emails_when_listed_are_every_kind_sent():
    # A kind the code no longer sends leaves no stale approved text behind.
    assert sorted(path.stem for path in EMAILS.glob("*.txt")) == sorted(WORDING_CASES)
