"""Passkeys as a test drives them: a software authenticator that makes real
WebAuthn objects, and registration through the real endpoints.

``SoftAuthenticator`` is a passkey device in software (ES256 keys from
``cryptography``, "none" attestation, resident credentials, a signature counter).
Its answers are what a browser's ``PublicKeyCredential.toJSON()`` gives, so the
server checks them exactly as it checks a real device's. Each knob a test turns
(origin, RP ID, user verification, counter) is one thing an attacker or a broken
device could get wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

from bench.common import call

PASSKEYS = "/api/v1/auth/passkeys"
USER_PRESENT, USER_VERIFIED, ATTESTED_DATA = 0x01, 0x04, 0x40
BACKUP_ELIGIBLE, BACKED_UP = 0x08, 0x10
ES256, EC2_KEY, P256 = -7, 2, 1


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


class SoftAuthenticator:
    """A user's passkey device, for one relying party and origin by default."""

    def __init__(self, rp_id: str, origin: str) -> None:
        self.rp_id = rp_id
        self.origin = origin
        self.credentials: list[Credential] = []

    @classmethod
    def for_app(cls, app) -> SoftAuthenticator:
        return cls(app.config["WEBAUTHN_RP_ID"], app.config["WEBAUTHN_ORIGINS"][0])

    # -- navigator.credentials.create -------------------------------------------------
    def create(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        reuse: Credential | None = None,
        sign_count: int = 0,
        backed_up: bool = False,
        transports: tuple[str, ...] = ("internal",),
    ) -> dict:
        """A new resident credential for ``options`` (or ``reuse``'s key again).
        ``sign_count``: where its counter starts (a device may start anywhere);
        ``backed_up``: a synced key (a password manager's)."""
        credential = reuse or Credential(
            id=os.urandom(32),
            key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=options["rp"]["id"],
            user_handle=base64url_to_bytes(options["user"]["id"]),
            sign_count=sign_count,
        )
        if reuse is None:
            self.credentials.append(credential)
        cose_key = self.public_key(credential)
        attested = bytes(16) + struct.pack(">H", len(credential.id)) + credential.id + cose_key
        backup = BACKUP_ELIGIBLE | BACKED_UP if backed_up else 0
        auth_data = self._auth_data(
            rp_id or credential.rp_id, user_verified, credential.sign_count, ATTESTED_DATA | backup
        )
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data + attested})
        return _as_json(
            credential,
            clientDataJSON=client_data,
            attestationObject=attestation,
            transports=list(transports),
        )

    @staticmethod
    def public_key(credential: Credential) -> bytes:
        """The credential's public key as COSE (what the server stores)."""
        numbers = credential.key.public_key().public_numbers()
        return encode_cbor(
            {
                1: EC2_KEY,
                3: ES256,
                -1: P256,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    # -- navigator.credentials.get ----------------------------------------------------
    def get(
        self,
        options: dict,
        *,
        credential: Credential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        sign_count: int | None = None,
        backed_up: bool = False,
    ) -> dict:
        """An assertion over ``options``' challenge by ``credential`` (default: the
        first one the options allow, or with none listed, the first resident one).
        The counter goes up by one, as real devices do, unless ``sign_count`` says.
        ``backed_up``: the key is now synced (a password manager's copy)."""
        credential = credential or self._pick(options)
        credential.sign_count = credential.sign_count + 1 if sign_count is None else sign_count
        backup = BACKUP_ELIGIBLE | BACKED_UP if backed_up else 0
        auth_data = self._auth_data(
            rp_id or credential.rp_id, user_verified, credential.sign_count, backup
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return _as_json(
            credential,
            clientDataJSON=client_data,
            authenticatorData=auth_data,
            signature=signature,
            userHandle=credential.user_handle,
        )

    def _pick(self, options: dict) -> Credential:
        allowed = {base64url_to_bytes(c["id"]) for c in options.get("allowCredentials", [])}
        return next(c for c in self.credentials if not allowed or c.id in allowed)

    @staticmethod
    def _auth_data(rp_id: str, user_verified: bool, sign_count: int, extra: int) -> bytes:
        flags = USER_PRESENT | (USER_VERIFIED if user_verified else 0) | extra
        return (
            hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)
        )

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()


def _as_json(credential: Credential, **response: bytes | list[str]) -> dict:
    """What ``PublicKeyCredential.toJSON()`` gives: binary values base64url."""
    return {
        "id": bytes_to_base64url(credential.id),
        "rawId": bytes_to_base64url(credential.id),
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
        "response": {
            name: bytes_to_base64url(value) if isinstance(value, bytes) else value
            for name, value in response.items()
        },
    }


@dataclass
class Registered:
    """A passkey registered through the API: its row's id and its device."""

    id: str
    credential: Credential
    authenticator: SoftAuthenticator


def register_passkey(
    client, headers: dict[str, str], authenticator: SoftAuthenticator, name: str = "Laptop"
) -> Registered:
    """Register a new passkey of ``authenticator`` for the owner of ``headers``
    (a fresh token), through the two real endpoints."""
    options = client.post(f"{PASSKEYS}/register/options", json={}, headers=headers)
    assert options.status_code == 200, options.get_json()
    answer = authenticator.create(options.get_json())
    response = client.post(
        f"{PASSKEYS}/register", json={"name": name, "credential": answer}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return Registered(response.get_json()["id"], authenticator.credentials[-1], authenticator)


# Well-formed answers to a challenge the server never issued: request bodies that
# pass validation and must then be refused (authorization and bad-input tables).
_DEVICE = SoftAuthenticator("localhost", "http://localhost")
_UNISSUED = {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "bm90LWlzc3VlZA"}
UNISSUED_REGISTRATION = _DEVICE.create(_UNISSUED)
UNISSUED_ASSERTION = _DEVICE.get(_UNISSUED)


def register_passkey_over_http(
    base: str, access_token: str, authenticator: SoftAuthenticator, name: str = "Bench"
) -> None:
    """``register_passkey`` against a served app (bench/flows.py), over HTTP."""
    status, options = call(base, "POST", f"{PASSKEYS}/register/options", {}, token=access_token)
    assert status == 200, options
    body = {"name": name, "credential": authenticator.create(options)}
    status, answer = call(base, "POST", f"{PASSKEYS}/register", body, token=access_token)
    assert status == 201, answer
