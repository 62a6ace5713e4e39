"""Encryption of secrets the app must read back (TOTP seeds), with rotatable keys.

``ENCRYPTION_KEY`` holds one Fernet key (AES-128-CBC + HMAC-SHA256, from
``cryptography``) or several, comma-separated: the first encrypts, every one
decrypts. Rotation: put a new key first, run ``flask rotate-encryption-key`` (which
re-encrypts every row with it), then drop the old key.

Hashes are not enough here: a TOTP check needs the seed itself. A database leak
without the key yields nothing usable.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

EXTENSION_KEY = "myapp.crypto"


class EncryptionKeyError(ValueError):
    """A configured key is not a Fernet key."""


def derived_key(secret: str) -> str:
    """A Fernet key derived from the app's secret key (development and testing
    only: production sets ``ENCRYPTION_KEY`` of its own, so that the two secrets
    can be rotated apart)."""
    digest = hashlib.sha256(b"myapp encryption key\n" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def parse_keys(value: str | None) -> list[str]:
    """The configured keys, newest first; ``EncryptionKeyError`` naming a bad one by position."""
    keys = [key.strip() for key in (value or "").split(",") if key.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise EncryptionKeyError(
                f"ENCRYPTION_KEY: key {position} is not a Fernet key"
            ) from None
    return keys


class SecretBox:
    """Encrypt with the newest key, decrypt with any configured one."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise EncryptionKeyError("ENCRYPTION_KEY is empty")
        self._newest = keys[0]
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SecretBox:
        return cls(parse_keys(config.get("ENCRYPTION_KEY")))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext; ``InvalidToken`` if no configured key opens it (a key was
        dropped before rotation finished, or the value was tampered with)."""
        return self._fernet.decrypt(ciphertext.encode()).decode()

    def is_current(self, ciphertext: str) -> bool:
        """True if the newest key already opens this value (nothing to rotate)."""
        try:
            Fernet(self._newest).decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, ciphertext: str) -> str:
        """The value re-encrypted with the newest key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def init_app(app: Flask) -> None:
    # Keys were checked by the configuration; without any (a bare Config), nothing
    # can be encrypted and secret_box() says why.
    if parse_keys(app.config.get("ENCRYPTION_KEY")):
        app.extensions[EXTENSION_KEY] = SecretBox.from_config(app.config)


def secret_box() -> SecretBox:
    """The current app's box."""
    box: SecretBox | None = current_app.extensions.get(EXTENSION_KEY)
    if box is None:
        raise EncryptionKeyError("ENCRYPTION_KEY is not configured")
    return box
