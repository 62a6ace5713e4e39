"""Passkeys (WebAuthn): what a passkey proves, and what a user may do with theirs.

``Passkeys`` hands out challenges and checks the answers, inside the caller's use
case (passwordless sign-in, the login's second step, re-authentication), so that
single use, the binding to ceremony and user, and the counter hold everywhere.
``PasskeyService`` holds the use cases of the passkeys themselves: registration,
listing, renaming, removal. No Flask request objects; one transaction each.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import current_app
from webauthn.helpers.structs import AuthenticationCredential, RegistrationCredential

from myapp.audit import audit
from myapp.auth.models import Passkey, WebAuthnCeremony, WebAuthnChallenge
from myapp.auth.relying_party import (
    Answer,
    CredentialRejected,
    KnownCredential,
    RelyingParty,
    challenge_hash,
    new_challenge,
    transports_of,
)
from myapp.auth.repository import MfaRepository, OidcRepository, PasskeyRepository
from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import AppError, Conflict, NotFound
from myapp.outbox.service import Outbox
from myapp.passwords import is_usable
from myapp.users.models import User
from myapp.users.repository import UserRepository

PASSKEY = "passkey"
USER_HANDLE_BYTES = 32


class PasskeyNotVerified(AppError):
    status = HTTPStatus.BAD_REQUEST
    detail = (
        "The passkey could not be verified: ask for new options and try again "
        "(the options are single use and expire after a few minutes)."
    )


class PasskeyAlreadyRegistered(Conflict):
    detail = "This passkey is already registered."


class NoPasskey(Conflict):
    detail = "This account has no passkey."


class LastWayToSignIn(Conflict):
    detail = (
        "This is the account's last way to sign in: set a password (through the "
        "password reset) or add another passkey before removing it."
    )


class PasskeyNotFound(NotFound):
    detail = "Passkey not found."


@dataclass(frozen=True)
class PasskeyUse:
    """A passkey that just proved its user, with user verification."""

    passkey: Passkey
    user_id: int


class Passkeys:
    """Challenges and the checks of their answers, inside the caller's use case."""

    def __init__(self, repository: PasskeyRepository, relying_party: RelyingParty) -> None:
        self.repository = repository
        self.relying_party = relying_party

    @classmethod
    def from_app(cls) -> Passkeys:
        return cls(PasskeyRepository(), RelyingParty.from_config(current_app.config))

    def has_any(self, user: User) -> bool:
        return self.repository.count_for_user(user.id) > 0

    def request_options(self, ceremony: WebAuthnCeremony, user: User | None) -> dict[str, Any]:
        """Store a challenge for an assertion and return the browser's options:
        the user's own passkeys, or (no user: passwordless) any of this site's."""
        allow = [] if user is None else self.known(user)
        challenge = self._store(ceremony, user)
        return self.relying_party.request_options(challenge=challenge, allow=allow)

    def creation_options(self, user: User, name: str | None) -> dict[str, Any]:
        handle = self.repository.user_handle(user.id) or secrets.token_bytes(USER_HANDLE_BYTES)
        challenge = self._store(WebAuthnCeremony.REGISTRATION, user, name=name, handle=handle)
        return self.relying_party.creation_options(
            challenge=challenge, user_handle=handle, user_name=user.email, exclude=self.known(user)
        )

    def known(self, user: User) -> list[KnownCredential]:
        return [
            KnownCredential(passkey.credential_id, _split(passkey.transports))
            for passkey in self.repository.list_for_user(user.id)
        ]

    def verify(
        self,
        answer: Answer[AuthenticationCredential],
        ceremony: WebAuthnCeremony,
        user: User | None = None,
    ) -> PasskeyUse | None:
        """The passkey that signed this answer, its counter recorded; or None.

        ``user``: the one it must belong to (the second step, re-authentication);
        None for passwordless sign-in. The challenge is spent whatever the outcome:
        the caller commits before refusing, so an answer never works twice.
        """
        now = utcnow()
        challenge = self._take(answer.challenge_hash, ceremony, user)
        if challenge is None:
            return self._refuse("challenge", ceremony, user)
        passkey = self.repository.by_credential_id(answer.credential_id)
        if passkey is None or (user is not None and passkey.user_id != user.id):
            return self._refuse("unknown_credential", ceremony, user)
        handle = answer.credential.response.user_handle
        if handle is not None and handle != passkey.user_handle:
            return self._refuse("user_handle", ceremony, user)
        try:
            assertion = self.relying_party.verify_assertion(
                answer, answer.challenge, passkey.public_key
            )
        except CredentialRejected as error:
            return self._refuse(error.reason, ceremony, user)
        if not self.repository.use(passkey.id, assertion.sign_count, assertion.backed_up, now):
            # The counter went back: two authenticators hold this key (a clone).
            audit(
                "passkey.counter_regressed",
                user_id=passkey.user_id,
                passkey_id=passkey.id,
                stored=passkey.sign_count,
                received=assertion.sign_count,
            )
            return None
        audit(
            "passkey.used", user_id=passkey.user_id, passkey_id=passkey.id, ceremony=str(ceremony)
        )
        return PasskeyUse(passkey, passkey.user_id)

    def take_registration(
        self, answer: Answer[RegistrationCredential], user: User
    ) -> WebAuthnChallenge | None:
        return self._take(answer.challenge_hash, WebAuthnCeremony.REGISTRATION, user)

    def _take(
        self, hash_: str, ceremony: WebAuthnCeremony, user: User | None
    ) -> WebAuthnChallenge | None:
        """The challenge, spent, if it is alive and was issued for this ceremony
        (and this user); None otherwise."""
        challenge = self.repository.take_challenge(hash_, utcnow())
        if (
            challenge is None
            or challenge.expires_at <= utcnow()
            or challenge.ceremony != ceremony
            or (user is not None and challenge.user_id != user.id)
        ):
            return None
        return challenge

    def _store(
        self,
        ceremony: WebAuthnCeremony,
        user: User | None,
        *,
        name: str | None = None,
        handle: bytes | None = None,
    ) -> bytes:
        challenge = new_challenge()
        self.repository.add_challenge(
            WebAuthnChallenge(
                challenge_hash=challenge_hash(challenge),
                ceremony=ceremony,
                user_id=user.id if user is not None else None,
                name=name,
                user_handle=handle,
                expires_at=utcnow() + self.relying_party.timeout,
            )
        )
        return challenge

    @staticmethod
    def _refuse(reason: str, ceremony: WebAuthnCeremony, user: User | None) -> None:
        audit(
            "passkey.rejected",
            user_id=user.id if user is not None else None,
            ceremony=str(ceremony),
            reason=reason,
        )
        return None


class PasskeyService:
    def __init__(
        self,
        users: UserRepository,
        passkeys: Passkeys,
        factors: MfaRepository,
        identities: OidcRepository,
        outbox: Outbox,
        uow: UnitOfWork,
    ) -> None:
        self.users = users
        self.identities = identities
        self.passkeys = passkeys
        self.repository = passkeys.repository
        self.factors = factors
        self.outbox = outbox
        self.uow = uow

    @classmethod
    def from_app(cls) -> PasskeyService:
        return cls(
            UserRepository(),
            Passkeys.from_app(),
            MfaRepository(),
            OidcRepository(),
            Outbox.from_app(),
            UnitOfWork(),
        )

    def list(self, user: User) -> list[Passkey]:
        return self.repository.list_for_user(user.id)

    def registration_options(self, user: User, name: str | None) -> dict[str, Any]:
        with self.uow:
            return self.passkeys.creation_options(user, name)

    def request_options(self, user: User, ceremony: WebAuthnCeremony) -> dict[str, Any]:
        """Options to prove it is ``user`` with one of their passkeys (409 without)."""
        if not self.passkeys.has_any(user):
            raise NoPasskey()
        with self.uow:
            return self.passkeys.request_options(ceremony, user)

    def register(
        self, user: User, answer: Answer[RegistrationCredential], name: str | None
    ) -> Passkey:
        """Store the new passkey the browser made with our options; the account now
        has a second factor, and the owner is told."""
        passkey, reason = None, "challenge"
        with self.uow:  # spends the challenge, whatever the outcome
            challenge = self.passkeys.take_registration(answer, user)
            if challenge is not None and challenge.user_handle is not None:
                try:
                    verified = self.passkeys.relying_party.verify_registration(
                        answer, answer.challenge
                    )
                except CredentialRejected as error:
                    reason = error.reason
                else:
                    if self.repository.by_credential_id(verified.credential_id) is not None:
                        raise PasskeyAlreadyRegistered()
                    passkey = self.repository.add(
                        Passkey(
                            user_id=user.id,
                            credential_id=verified.credential_id,
                            public_key=verified.credential_public_key,
                            user_handle=challenge.user_handle,
                            sign_count=verified.sign_count,
                            name=name or challenge.name or "Passkey",
                            transports=",".join(transports_of(answer)),
                            backed_up=verified.credential_backed_up,
                        )
                    )
                    user.is_mfa_enabled = True
                    self.users.save(user)
                    self._tell(
                        user,
                        "A passkey was added to your account",
                        f"The passkey '{passkey.name}' can now sign in to your account.",
                        kind="passkey_added",
                    )
        if passkey is None:
            audit("passkey.rejected", user_id=user.id, ceremony="registration", reason=reason)
            raise PasskeyNotVerified()
        audit("passkey.registered", user_id=user.id, passkey_id=passkey.id)
        return passkey

    def rename(self, user: User, passkey_id: str, name: str) -> Passkey:
        with self.uow:
            passkey = self._get(user, passkey_id)
            passkey.name = name
        return passkey

    def delete(self, user: User, passkey_id: str) -> None:
        """Remove a passkey. The last one of an account without a password or a
        linked provider account is refused: the owner would have no way left in."""
        with self.uow:
            passkey = self._get(user, passkey_id)
            others = self.repository.count_for_user(user.id) - 1
            if (
                others == 0
                and not is_usable(user.password_hash)
                and self.identities.count_for_user(user.id) == 0
            ):
                raise LastWayToSignIn()
            self.repository.delete(passkey)
            if others == 0 and not self.factors.has_confirmed_totp(user.id):
                # No second factor left: the recovery codes stood in for one.
                self.factors.delete_recovery_codes(user.id)
                user.is_mfa_enabled = False
                self.users.save(user)
            self._tell(
                user,
                "A passkey was removed from your account",
                f"The passkey '{passkey.name}' can no longer sign in to your account.",
                kind="passkey_removed",
            )
        audit("passkey.deleted", user_id=user.id, passkey_id=passkey_id)

    def _get(self, user: User, passkey_id: str) -> Passkey:
        passkey = self.repository.get_for_user(passkey_id, user.id)
        if passkey is None:
            # Another user's passkey is "not found": ids are no oracle.
            raise PasskeyNotFound()
        return passkey

    def _tell(self, user: User, subject: str, what: str, *, kind: str) -> None:
        self.outbox.queue_notice(user.email, subject, what, kind=kind)


def _split(transports: str) -> list[str]:
    return [transport for transport in transports.split(",") if transport]
