"""The key set access tokens are signed with, when they are asymmetric (EdDSA or
RS256): other services verify them with the public keys alone (``/.well-known/
jwks.json``) and cannot mint any.

The set is a JWK Set, newest key first: the first signs, every key still in it
verifies. ``rotate`` puts a new key first and marks the previous signer retired
(``retired_at``, a member of our own); ``prune`` drops retired keys once every token
they signed has expired. Processes that read the same file agree: each reloads it
when the file changes (looked at no more than once a second), and at once when a
token names a key it does not hold.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from flask import current_app
from flask_jwt_extended.config import config as jwt_config
from joserfc.jwk import JWKRegistry, OKPKey, RSAKey
from jwt.exceptions import InvalidSignatureError

ALGORITHMS = {"EdDSA": "OKP", "RS256": "RSA"}  # the asymmetric algorithms we sign with
RSA_BITS = 3072  # NIST's size for use beyond 2030
RETIRED_AT = "retired_at"
# What a public JWK may carry: never a private member (d, p, q, dp, dq, qi, oth, k).
PUBLIC_MEMBERS = {"kty", "crv", "x", "n", "e", "kid", "alg", "use"}


class KeySetError(ValueError):
    """The configured key set cannot be used (create_app refuses to start)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    jwk: dict[str, Any]  # private members included
    retired_at: datetime | None = None

    @cached_property
    def _key(self) -> Any:
        # Loaded once per key (the check runs on every request), not per token.
        return JWKRegistry.import_key(self.jwk)

    @property
    def private_key(self) -> Any:
        return self._key.private_key

    @property
    def public_key(self) -> Any:
        return self._key.public_key

    def public_jwk(self, algorithm: str) -> dict[str, Any]:
        public = {k: v for k, v in self.jwk.items() if k in PUBLIC_MEMBERS}
        return {**public, "kid": self.kid, "alg": algorithm, "use": "sig"}


@dataclass(frozen=True)
class KeySet:
    algorithm: str
    keys: tuple[SigningKey, ...]

    @property
    def signer(self) -> SigningKey:
        return self.keys[0]

    def find(self, kid: str | None) -> SigningKey | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk(self.algorithm) for key in self.keys]}

    def rotated(self, now: datetime) -> KeySet:
        """A new signing key first; the previous signer retired now (it still verifies)."""
        previous = self.keys[0]
        retired = SigningKey(previous.kid, previous.jwk, previous.retired_at or now)
        return KeySet(self.algorithm, (new_key(self.algorithm), retired, *self.keys[1:]))

    def pruned(self, now: datetime, token_lifetime: timedelta) -> KeySet:
        """Without the keys retired longer ago than any token lives: what they signed
        has expired."""
        kept = tuple(
            key
            for key in self.keys
            if key.retired_at is None or key.retired_at + token_lifetime > now
        )
        return KeySet(self.algorithm, kept)

    def to_json(self) -> str:
        entries = []
        for key in self.keys:
            entry = {**key.jwk, "kid": key.kid, "alg": self.algorithm}
            if key.retired_at is not None:
                entry[RETIRED_AT] = key.retired_at.isoformat()
            entries.append(entry)
        return json.dumps({"keys": entries}, indent=2) + "\n"


def new_key(algorithm: str) -> SigningKey:
    if algorithm == "EdDSA":
        key: Any = OKPKey.generate_key("Ed25519", private=True)
    elif algorithm == "RS256":
        key = RSAKey.generate_key(RSA_BITS, private=True)
    else:
        raise KeySetError(f"no key type for {algorithm}")
    jwk = key.as_dict(private=True)
    return SigningKey(key.thumbprint(), jwk)


def new_key_set(algorithm: str) -> KeySet:
    return KeySet(algorithm, (new_key(algorithm),))


def parse_key_set(text: str, algorithm: str) -> KeySet:
    """A JWK Set, a single JWK or a PEM private key, for ``algorithm``."""
    if algorithm not in ALGORITHMS:
        raise KeySetError(f"JWT_ALGORITHM {algorithm} signs with a shared secret, not keys")
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = JWKRegistry.import_key(text, ALGORITHMS[algorithm])
            entries = [key.as_dict(private=True)]  # named by its thumbprint below
        else:
            document = json.loads(text)
            entries = document.get("keys", [document])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise KeySetError(f"JWT_PRIVATE_KEYS is not a PEM key or a JWK Set: {error}") from None
    keys = []
    for entry in entries:
        keys.append(_signing_key(entry, algorithm))
    if not keys:
        raise KeySetError("JWT_PRIVATE_KEYS holds no key")
    if keys[0].retired_at is not None:
        raise KeySetError("JWT_PRIVATE_KEYS: the first key signs, and it is retired")
    return KeySet(algorithm, tuple(keys))


def _signing_key(entry: dict[str, Any], algorithm: str) -> SigningKey:
    retired = entry.get(RETIRED_AT)
    # "alg" and "use" may stay: the set's algorithm is JWT_ALGORITHM's, and the
    # published set is built from the public members alone.
    jwk = {k: v for k, v in entry.items() if k != RETIRED_AT}
    try:
        key = JWKRegistry.import_key(jwk)
    except Exception as error:  # noqa: BLE001 - joserfc raises several kinds
        raise KeySetError(f"JWT_PRIVATE_KEYS: a key cannot be read: {error}") from None
    if key.key_type != ALGORITHMS[algorithm] or not key.is_private:
        raise KeySetError(f"JWT_PRIVATE_KEYS: every key must be a private {algorithm} key")
    kid = str(entry.get("kid") or key.thumbprint())
    return SigningKey(kid, jwk, datetime.fromisoformat(retired) if retired else None)


def write_key_set(path: Path, key_set: KeySet) -> None:
    """Replace the file at once (a reader sees the old set or the new one, never
    half of it), readable by its owner only."""
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=".jwks-")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(key_set.to_json())
        os.replace(draft, path)
    except BaseException:
        os.unlink(draft)
        raise


@dataclass
class KeySource:
    """The configured key set: a value (fixed for the process) or a file (read
    again when it changes, or when a token names a key not yet seen)."""

    value: str
    algorithm: str
    # Every token check asks for the set: the file's mtime is looked at no more
    # than once a second (a stat per request was a sixth of EdDSA's extra cost).
    # A rotation is signed with within that second; an unknown kid reloads at once.
    check_every: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _cached: KeySet | None = None
    _mtime: float | None = None
    _checked_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def path(self) -> Path | None:
        text = self.value.strip()
        return None if text.startswith(("{", "-----BEGIN")) else Path(text)

    def current(self) -> KeySet:
        path = self.path
        if path is None:
            if self._cached is None:
                self._cached = parse_key_set(self.value, self.algorithm)
            return self._cached
        now = self.clock()
        if self._cached is not None and now - self._checked_at < self.check_every:
            return self._cached
        try:
            mtime = path.stat().st_mtime
        except OSError as error:
            raise KeySetError(f"JWT_PRIVATE_KEYS file {path}: {error}") from None
        with self._lock:
            if self._cached is None or mtime != self._mtime:
                self._cached = parse_key_set(path.read_text(), self.algorithm)
                self._mtime = mtime
            self._checked_at = now
            return self._cached

    def reload(self) -> KeySet:
        with self._lock:
            self._mtime = None
            self._checked_at = float("-inf")
        return self.current()


# -- the app's key set ------------------------------------------------------------
_EXTENSION = "myapp.signing_keys"


def install(app: Any, manager: Any) -> None:
    """Sign and verify with the configured key set when JWT_ALGORITHM is
    asymmetric (HS256 keeps flask-jwt-extended's shared secret). The set is read
    now: a bad one stops the app from starting.

    The loaders are the extension's (one per process, shared by every app made in
    it), so they ask the current app for its keys."""
    algorithm = app.config["JWT_ALGORITHM"]
    if algorithm in ALGORITHMS:
        source = KeySource(str(app.config["JWT_PRIVATE_KEYS"]), algorithm)
        source.current()
        app.extensions[_EXTENSION] = source
    manager.encode_key_loader(_encode_key)
    manager.additional_headers_loader(_headers)
    manager.decode_key_loader(_decode_key)


def reload_current() -> None:
    """Read the current app's key file again now (the CLI just wrote it; other
    processes notice within a second)."""
    source = _source()
    if source is not None:
        source.reload()


def _source() -> KeySource | None:
    source: KeySource | None = current_app.extensions.get(_EXTENSION)
    return source


def _encode_key(identity: Any) -> Any:
    source = _source()
    return source.current().signer.private_key if source else jwt_config.encode_key


def _headers(identity: Any) -> dict[str, str]:
    # Tokens name their key, so verifiers pick it from the published set.
    source = _source()
    return {"kid": source.current().signer.kid} if source else {}


def _decode_key(header: dict[str, Any], payload: dict[str, Any]) -> Any:
    source = _source()
    if source is None:
        return jwt_config.decode_key
    kid = header.get("kid")
    key = source.current().find(kid) or source.reload().find(kid)
    if key is None:
        # A key never in our set, or pruned: the token is as good as forged.
        raise InvalidSignatureError("unknown signing key")
    return key.public_key


def public_jwks() -> dict[str, Any]:
    """The public keys of the current app's set (none with HS256: nothing to publish)."""
    source = _source()
    return source.current().public_jwks() if source is not None else {"keys": []}
