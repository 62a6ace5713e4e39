"""Password hashing with argon2id, parameters from configuration.

Tests configure cheap parameters and run the very same code; argon2 stores the
parameters inside each hash, so verifying never depends on the configuration.
"""

from __future__ import annotations

import secrets
import unicodedata
from functools import cache

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app
from zxcvbn.frequency_lists import FREQUENCY_LISTS


def normalise_password(password: str) -> str:
    """NFKC-normalise, so the same password typed on different keyboards matches.

    NIST SP 800-63B recommends normalising Unicode passwords; nothing is truncated.
    """
    return unicodedata.normalize("NFKC", password)


@cache
def _common_passwords() -> frozenset[str]:
    # The 30,000 most common passwords of the list zxcvbn maintains (lower-case).
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    """True for a password on the common-passwords list, whatever its letter case."""
    return normalise_password(password).lower() in _common_passwords()


class PasswordHasher:
    """A Flask extension wrapping ``argon2.PasswordHasher``."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        hasher = argon2.PasswordHasher(
            time_cost=app.config["ARGON2_TIME_COST"],
            memory_cost=app.config["ARGON2_MEMORY_COST"],
            parallelism=app.config["ARGON2_PARALLELISM"],
            type=argon2.Type.ID,
        )
        # A hash of a random value, verified when a login names an unknown user, so
        # that "no such user" costs the same time as "wrong password".
        dummy_hash = hasher.hash(secrets.token_urlsafe(32))
        app.extensions["myapp.passwords"] = _State(hasher, dummy_hash)

    @staticmethod
    def _state() -> _State:
        state: _State = current_app.extensions["myapp.passwords"]
        return state

    def hash(self, password: str) -> str:
        return self._state().hasher.hash(normalise_password(password))

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; False for a mismatch or an unusable hash."""
        if not is_usable(password_hash):
            # The time of a real check: answers must not tell which accounts have none.
            return self.verify_dummy(password)
        try:
            return self._state().hasher.verify(password_hash, normalise_password(password))
        except (VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> bool:
        """Spend the time of a real verification; always False."""
        self.verify(self._state().dummy_hash, password)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._state().hasher.check_needs_rehash(password_hash)


# An account without a password (one that signs in with a passkey) stores this
# prefix and random text: no password matches it, and the column stays non-null
# and unique per account (what reset links and mfa_tokens are bound to).
UNUSABLE_PREFIX = "!"


def unusable_password() -> str:
    return UNUSABLE_PREFIX + secrets.token_urlsafe(32)


def is_usable(password_hash: str) -> bool:
    return not password_hash.startswith(UNUSABLE_PREFIX)


class _State:
    __slots__ = ("hasher", "dummy_hash")

    def __init__(self, hasher: argon2.PasswordHasher, dummy_hash: str) -> None:
        self.hasher = hasher
        self.dummy_hash = dummy_hash
