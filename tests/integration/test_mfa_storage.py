"""TOTP secrets at rest: encrypted, never stored as they are shown, and still
readable across a key rotation (``flask rotate-encryption-key``)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from myapp import crypto
from myapp.crypto import SecretBox
from myapp.extensions import db

SECRET_COLUMN = text("SELECT secret_encrypted FROM totp_credentials WHERE user_id = :id")


def stored_secret(user) -> str:
    return db.session.execute(SECRET_COLUMN, {"id": user.id}).scalar_one()


@pytest.fixture
def use_keys(app, monkeypatch):
    """Make the app encrypt and decrypt with these keys (newest first), as after a
    restart with ``ENCRYPTION_KEY=new,old``."""

    def configure(*keys: str) -> None:
        monkeypatch.setitem(app.extensions, crypto.EXTENSION_KEY, SecretBox(list(keys)))

    return configure


class TestEncryptionAtRest:
    def test_secret_when_stored_is_ciphertext_that_only_the_key_opens(self, app, user, enrolled):
        raw = stored_secret(user)

        assert enrolled.authenticator.secret not in raw
        assert raw.startswith("gAAAAA")  # a Fernet token: version byte and timestamp
        assert crypto.secret_box().decrypt(raw) == enrolled.authenticator.secret
        with pytest.raises(InvalidToken):
            SecretBox([Fernet.generate_key().decode()]).decrypt(raw)


class TestKeyRotation:
    def test_rotation_when_new_key_added_first_reencrypts_and_old_key_can_go(
        self, app, auth, user, enrolled, use_keys, clock, audit_log
    ):
        old = app.config["ENCRYPTION_KEY"]
        new = Fernet.generate_key().decode()
        before = stored_secret(user)
        # 1. Restart with the new key first: old secrets still open.
        use_keys(new, old)
        token = auth.mfa_token_for(user)
        assert auth.login_mfa(token, code=enrolled.authenticator.code()).status_code == 200
        clock.tick(30)

        # 2. Re-encrypt.
        result = app.test_cli_runner().invoke(args=["rotate-encryption-key"])

        assert result.exit_code == 0, result.output
        assert "Re-encrypted 1 secret(s)" in result.output
        assert stored_secret(user) != before
        assert [e["rows"] for e in audit_log("mfa.encryption_key_rotated")] == [1]
        # 3. Restart without the old key: nothing stored needs it any more.
        use_keys(new)
        token = auth.mfa_token_for(user)
        assert auth.login_mfa(token, code=enrolled.authenticator.code()).status_code == 200

    def test_rotation_when_everything_is_current_changes_nothing(self, app, user, enrolled):
        before = stored_secret(user)

        result = app.test_cli_runner().invoke(args=["rotate-encryption-key"])

        assert "Re-encrypted 0 secret(s)" in result.output
        assert stored_secret(user) == before

    def test_generate_when_run_prints_a_usable_key(self, app):
        result = app.test_cli_runner().invoke(args=["generate-encryption-key"])

        key = result.output.strip()
        assert SecretBox([key]).decrypt(SecretBox([key]).encrypt("x")) == "x"
