"""The argon2id password hasher, on a bare Flask app with cheap parameters."""

from __future__ import annotations

import unittest
from unittest import mock

import argon2
from flask import Flask

from myapp.passwords import (
    PasswordHasher,
    is_common_password,
    is_usable,
    normalise_password,
    unusable_password,
)


def _app(time_cost: int = 1, memory_cost: int = 8) -> Flask:
    app = Flask(__name__)
    app.config.update(
        ARGON2_TIME_COST=time_cost, ARGON2_MEMORY_COST=memory_cost, ARGON2_PARALLELISM=1
    )
    return app


class TestPasswordHasher(unittest.TestCase):
    def setUp(self) -> None:
        self.hasher = PasswordHasher()
        self.app = _app()
        self.hasher.init_app(self.app)
        self.enterContext(self.app.app_context())

    def test_hash_when_called_is_argon2id_with_configured_parameters(self):
        encoded = self.hasher.hash("a long password!")

        params = argon2.extract_parameters(encoded)
        self.assertTrue(encoded.startswith("$argon2id$"))
        self.assertEqual((params.time_cost, params.memory_cost), (1, 8))

    def test_verify_when_password_matches_returns_true(self):
        encoded = self.hasher.hash("a long password!")

        self.assertTrue(self.hasher.verify(encoded, "a long password!"))

    def test_verify_when_password_differs_returns_false(self):
        encoded = self.hasher.hash("a long password!")

        self.assertFalse(self.hasher.verify(encoded, "a long password?"))

    def test_verify_when_hash_is_garbage_returns_false(self):
        self.assertFalse(self.hasher.verify("not a hash", "a long password!"))

    def test_verify_when_long_passwords_differ_only_at_end_returns_false(self):
        # Nothing is truncated (bcrypt would stop at 72 bytes).
        base = "é" * 127
        encoded = self.hasher.hash(base + "a")

        self.assertFalse(self.hasher.verify(encoded, base + "b"))

    def test_verify_when_unicode_form_differs_matches_after_nfkc(self):
        composed, decomposed = "caf\u00e9 password", "cafe\u0301 password"
        encoded = self.hasher.hash(composed)

        self.assertTrue(self.hasher.verify(encoded, decomposed))

    def test_verify_when_account_has_no_password_matches_nothing_at_a_real_checks_cost(self):
        unusable = unusable_password()

        with mock.patch.object(
            self.hasher, "verify_dummy", wraps=self.hasher.verify_dummy
        ) as dummy:
            self.assertFalse(self.hasher.verify(unusable, unusable))
            self.assertFalse(self.hasher.verify(unusable, unusable[1:]))
        self.assertEqual(dummy.call_count, 2)  # the time of a check: no oracle
        self.assertFalse(is_usable(unusable))
        self.assertTrue(is_usable(self.hasher.hash("a long password!")))
        # Per account: reset links and second steps are bound to this value.
        self.assertNotEqual(unusable_password(), unusable)

    def test_verify_dummy_when_called_returns_false(self):
        self.assertFalse(self.hasher.verify_dummy("anything at all"))

    def test_needs_rehash_when_parameters_raised_returns_true(self):
        old = self.hasher.hash("a long password!")
        stronger = _app(time_cost=2, memory_cost=16)
        self.hasher.init_app(stronger)

        with stronger.app_context():
            self.assertTrue(self.hasher.needs_rehash(old))
            self.assertFalse(self.hasher.needs_rehash(self.hasher.hash("a long password!")))


class TestPasswordHasherInit(unittest.TestCase):
    def test_init_when_app_given_initialises_it(self):
        app = _app()

        hasher = PasswordHasher(app)

        with app.app_context():
            self.assertTrue(hasher.verify(hasher.hash("a long password!"), "a long password!"))


class TestCommonPasswords(unittest.TestCase):
    def test_is_common_when_on_list_in_any_case_returns_true(self):
        for password in ("password", "PassWord", "qwerty123456", "LEAVEMEALONE"):
            with self.subTest(password):
                self.assertTrue(is_common_password(password))

    def test_is_common_when_not_on_list_returns_false(self):
        self.assertFalse(is_common_password("violet staple orbit 42"))


class TestNormalisePassword(unittest.TestCase):
    def test_normalise_when_applied_twice_is_idempotent(self):
        value = "ﬁ Ａ cafe\u0301"

        self.assertEqual(normalise_password(normalise_password(value)), normalise_password(value))
