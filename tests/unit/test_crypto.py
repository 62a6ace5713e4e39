"""myapp.crypto: the key list, rotation, and what a missing or wrong key does."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken

from myapp import create_app
from myapp.crypto import EncryptionKeyError, SecretBox, derived_key, parse_keys, secret_box

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


class TestKeys:
    def test_parse_when_list_has_spaces_and_blanks_keeps_the_keys_in_order(self):
        assert parse_keys(f" {NEW} , ,{OLD},") == [NEW, OLD]

    @pytest.mark.parametrize("value", [None, "", " , "])
    def test_box_when_no_key_refuses_naming_the_setting(self, value):
        # The operator reads this at start-up: it must name the setting to fill in.
        with pytest.raises(EncryptionKeyError, match=r"\AENCRYPTION_KEY is empty\Z"):
            SecretBox(parse_keys(value))

    def test_app_when_configured_without_any_key_refuses_to_encrypt_saying_why(self):
        app = create_app("testing", overrides={"ENCRYPTION_KEY": "", "SECRET_KEY": ""})

        why = r"\AENCRYPTION_KEY is not configured\Z"  # the setting to fill in
        with app.app_context(), pytest.raises(EncryptionKeyError, match=why):
            secret_box()


class TestRotation:
    def test_box_when_keys_listed_encrypts_with_the_first_and_opens_with_any(self):
        old_value = SecretBox([OLD]).encrypt("seed")
        box = SecretBox([NEW, OLD])

        assert box.decrypt(old_value) == "seed"
        assert SecretBox([NEW]).decrypt(box.encrypt("seed")) == "seed"
        assert (box.is_current(old_value), box.is_current(box.encrypt("x"))) == (False, True)

    def test_rotate_when_value_is_old_makes_it_readable_by_the_new_key_alone(self):
        rotated = SecretBox([NEW, OLD]).rotate(SecretBox([OLD]).encrypt("seed"))

        assert SecretBox([NEW]).decrypt(rotated) == "seed"
        with pytest.raises(InvalidToken):
            SecretBox([OLD]).decrypt(rotated)


class TestDerivedKey:
    def test_derived_key_when_secret_is_known_is_the_same_in_every_release(self):
        # A known answer: development's TOTP secrets are encrypted with this key, so
        # a change of the derivation would make every one of them unreadable.
        assert derived_key("development secret") == "kYNNETjlLUFYijUuVZEsq69wraYb1NHcj29ryHPZrCg="

    def test_derived_key_when_secrets_differ_differs_and_is_a_fernet_key(self):
        first, second = derived_key("one secret"), derived_key("another secret")

        assert first != second
        assert Fernet(first).decrypt(Fernet(first).encrypt(b"x")) == b"x"
