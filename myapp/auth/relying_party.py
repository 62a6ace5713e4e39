"""WebAuthn's rules, on py_webauthn: the options a browser gets, and the checks of
what comes back. Pure: no database, no Flask request; ``passkeys.py`` holds the
use cases.

Every ceremony asks for user verification (a PIN or biometric on the device):
that is what lets a passkey stand for both factors at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    generate_challenge,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

C = TypeVar("C", RegistrationCredential, AuthenticationCredential)


class MalformedCredential(ValueError):
    """Not a WebAuthn credential at all (the request body's fault: 422)."""


class CredentialRejected(Exception):
    """A well-formed credential that fails a check (origin, RP ID, challenge,
    flags, signature); ``reason`` is for the audit log, never for the client."""

    def __init__(self, reason: str) -> None:
        # No super().__init__ needed: BaseException keeps the arguments (str(error)).
        self.reason = reason


@dataclass(frozen=True)
class Answer(Generic[C]):
    """A browser's answer to a ceremony, and the challenge it claims to answer
    (read from its client data, to find the stored challenge by)."""

    credential: C
    challenge: bytes

    @property
    def challenge_hash(self) -> str:
        return challenge_hash(self.challenge)

    @property
    def credential_id(self) -> bytes:
        return self.credential.raw_id


@dataclass(frozen=True)
class KnownCredential:
    """What the options name of a stored passkey."""

    credential_id: bytes
    transports: Sequence[str] = ()


@dataclass(frozen=True)
class Assertion:
    sign_count: int
    backed_up: bool


def challenge_hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def new_challenge() -> bytes:
    return generate_challenge()  # 64 random bytes


def parse_registration(value: dict[str, Any]) -> Answer[RegistrationCredential]:
    return _answer(parse_registration_credential_json, value)


def parse_assertion(value: dict[str, Any]) -> Answer[AuthenticationCredential]:
    return _answer(parse_authentication_credential_json, value)


def _answer(parse: Any, value: dict[str, Any]) -> Answer[Any]:
    try:
        credential = parse(value)
        client_data = parse_client_data_json(credential.response.client_data_json)
    except (WebAuthnException, ValueError, TypeError) as error:
        raise MalformedCredential(f"Not a WebAuthn credential: {error}") from None
    return Answer(credential, client_data.challenge)


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origins: list[str]
    timeout: timedelta

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RelyingParty:
        return cls(
            id=config["WEBAUTHN_RP_ID"],
            name=config["WEBAUTHN_RP_NAME"],
            origins=list(config["WEBAUTHN_ORIGINS"]),
            timeout=timedelta(seconds=config["WEBAUTHN_CHALLENGE_EXPIRES"]),
        )

    def creation_options(
        self,
        *,
        challenge: bytes,
        user_handle: bytes,
        user_name: str,
        exclude: Sequence[KnownCredential],
    ) -> dict[str, Any]:
        """Options for ``navigator.credentials.create``: a discoverable passkey
        with user verification, none of the user's existing ones again."""
        options = generate_registration_options(
            rp_id=self.id,
            rp_name=self.name,
            user_name=user_name,
            user_id=user_handle,
            user_display_name=user_name,
            challenge=challenge,
            timeout=self._milliseconds,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[_descriptor(known) for known in exclude],
        )
        return options_to_json_dict(options)

    def request_options(
        self, *, challenge: bytes, allow: Sequence[KnownCredential]
    ) -> dict[str, Any]:
        """Options for ``navigator.credentials.get``; an empty ``allow`` lets the
        browser offer any discoverable passkey of this site (passwordless)."""
        options = generate_authentication_options(
            rp_id=self.id,
            challenge=challenge,
            timeout=self._milliseconds,
            allow_credentials=[_descriptor(known) for known in allow],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return options_to_json_dict(options)

    def verify_registration(
        self, answer: Answer[RegistrationCredential], challenge: bytes
    ) -> VerifiedRegistration:
        try:
            return verify_registration_response(
                credential=answer.credential,
                expected_challenge=challenge,
                expected_rp_id=self.id,
                expected_origin=self.origins,
                require_user_verification=True,
            )
        except WebAuthnException as error:
            raise CredentialRejected(str(error)) from None

    def verify_assertion(
        self, answer: Answer[AuthenticationCredential], challenge: bytes, public_key: bytes
    ) -> Assertion:
        """Check the signature and the flags; the counter is the caller's (it
        knows the stored one and must compare-and-swap it)."""
        try:
            verified = verify_authentication_response(
                credential=answer.credential,
                expected_challenge=challenge,
                expected_rp_id=self.id,
                expected_origin=self.origins,
                credential_public_key=public_key,
                # 0: py_webauthn's own counter check is skipped; the caller's
                # compare-and-swap is the one that holds under concurrency.
                credential_current_sign_count=0,
                require_user_verification=True,
            )
        except WebAuthnException as error:
            raise CredentialRejected(str(error)) from None
        return Assertion(verified.new_sign_count, verified.credential_backed_up)

    @property
    def _milliseconds(self) -> int:
        return int(self.timeout.total_seconds() * 1000)


def transports_of(answer: Answer[RegistrationCredential]) -> list[str]:
    return [transport.value for transport in answer.credential.response.transports or []]


def _descriptor(known: KnownCredential) -> PublicKeyCredentialDescriptor:
    # A transport this version of py_webauthn does not know is left out.
    known_names = {transport.value for transport in AuthenticatorTransport}
    transports = [AuthenticatorTransport(name) for name in known.transports if name in known_names]
    return PublicKeyCredentialDescriptor(id=known.credential_id, transports=transports or None)
