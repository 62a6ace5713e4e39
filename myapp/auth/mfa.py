"""Two-factor sign-in: the user's second factors and what may be done with them.

``SecondFactors`` checks a code (TOTP or recovery code) inside the caller's use
case: the one check behind every endpoint that takes a code (the login's second
step, re-authentication, turning TOTP off), so replay protection and the
per-account budget of wrong codes hold across all of them.

``MfaService`` holds the use cases of the factors themselves: enrolment, recovery
codes, removal by the user or by an administrator, key rotation. Like the other
services: no Flask request objects, one transaction per use case.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from flask import current_app
from webauthn.helpers.structs import AuthenticationCredential

from myapp.audit import audit
from myapp.auth.factors import (
    matching_step,
    new_recovery_codes,
    new_totp_secret,
    normalise_recovery_code,
    provisioning_uri,
    qr_svg,
    recovery_code_hash,
)
from myapp.auth.models import TotpCredential, WebAuthnCeremony
from myapp.auth.passkeys import PASSKEY, Passkeys
from myapp.auth.relying_party import Answer
from myapp.auth.repository import MfaRepository, SessionRepository
from myapp.crypto import SecretBox, secret_box
from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import AppError, Conflict, Forbidden, NotFound, TooManyRequests
from myapp.outbox.compose import compose
from myapp.outbox.service import Outbox
from myapp.ratelimit import Budget
from myapp.users.models import User
from myapp.users.repository import UserRepository

TOTP = "totp"
RECOVERY_CODE = "recovery_code"
WRONG_CODES_MESSAGE = "Too many wrong codes for this account; try again later."


class TotpAlreadyOn(Conflict):
    detail = "Two-factor sign-in is already on: turn it off first to enrol a new app."


class NoPendingEnrolment(Conflict):
    detail = "No enrolment is pending: start with POST /auth/mfa/totp/setup."


class TotpOff(Conflict):
    detail = "Two-factor sign-in is off: there is nothing to do with recovery codes."


class NoSecondFactor(Conflict):
    detail = "This user has no second factor."


class WrongEnrolmentCode(AppError):
    status = HTTPStatus.BAD_REQUEST
    detail = "The code does not match: check the app's clock and try the current code."


class WrongCode(Forbidden):
    # 403, not 401: the caller's token is fine (a 401 would send clients to refresh).
    detail = "The code is wrong, expired or already used."


class CodeRequired(Forbidden):
    detail = (
        "This account uses two-factor sign-in: give a code or a recovery code, "
        "or use a passkey instead of the password."
    )


@dataclass(frozen=True)
class Proof:
    """What a user offers as their second factor: one of the three."""

    code: str | None = None
    recovery_code: str | None = None
    passkey: Answer[AuthenticationCredential] | None = None

    @property
    def given(self) -> bool:
        return self.code is not None or self.recovery_code is not None or self.passkey is not None

    @property
    def method(self) -> str:
        if self.passkey is not None:
            return PASSKEY
        return TOTP if self.code is not None else RECOVERY_CODE


@dataclass(frozen=True)
class MfaStatus:
    totp: bool
    passkeys: int
    recovery_codes_left: int
    methods: list[str]


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str
    qr_svg: str


class SecondFactors:
    """Checks codes against a user's factors, inside the caller's use case."""

    def __init__(
        self,
        repository: MfaRepository,
        passkeys: Passkeys,
        box: SecretBox,
        failures: Budget,
        outbox: Outbox,
    ) -> None:
        self.repository = repository
        self.passkeys = passkeys
        self.box = box
        # Wrong codes per account and window, whatever the endpoint.
        self.failures = failures
        self.outbox = outbox

    @classmethod
    def from_app(cls) -> SecondFactors:
        return cls(
            MfaRepository(),
            Passkeys.from_app(),
            secret_box(),
            Budget.of(current_app, "RATELIMIT_MFA_FAILURES", WRONG_CODES_MESSAGE),
            Outbox.from_app(),
        )

    def methods(self, user: User) -> list[str]:
        """The ways the user can pass the second step."""
        if not user.is_mfa_enabled:
            return []
        methods = [TOTP] if self.repository.has_confirmed_totp(user.id) else []
        if self.passkeys.has_any(user):
            methods.append(PASSKEY)
        if self.repository.has_recovery_codes(user.id):
            methods.append(RECOVERY_CODE)
        return methods

    def check(
        self,
        user: User,
        proof: Proof,
        uow: UnitOfWork,
        ceremony: WebAuthnCeremony = WebAuthnCeremony.SECOND_FACTOR,
    ) -> str | None:
        """The method that proved the user (the code is used up: its time step,
        the recovery code, or the passkey's challenge), or None. Raises
        ``TooManyRequests`` once the account's budget of wrong codes is spent
        (nothing is checked then). ``ceremony``: what a passkey's challenge must
        have been issued for."""
        self._spend(user)
        method = None
        if proof.passkey is not None:
            if self.passkeys.verify(proof.passkey, ceremony, user) is not None:
                method = PASSKEY
        elif proof.code is not None:
            credential = self.repository.get_totp(user.id)
            if credential is not None and credential.confirmed_at is not None:
                step = self._step(credential, proof.code, after=credential.last_used_step)
                if step is not None and self.repository.use_step(user.id, step):
                    method = TOTP
        elif proof.recovery_code is not None:
            code_hash = recovery_code_hash(user.id, normalise_recovery_code(proof.recovery_code))
            if self.repository.use_recovery_code(user.id, code_hash, utcnow()):
                method = RECOVERY_CODE
                self._tell_recovery_code_used(user, uow)
        if method is None:
            audit("mfa.failed", user_id=user.id, method=proof.method)
            return None
        self.failures.refund(self._key(user))
        return method

    def check_enrolment(self, user: User, credential: TotpCredential, code: str) -> int | None:
        """The time step of ``code`` if it matches the pending secret, else None
        (a wrong code spends from the same budget as any other)."""
        self._spend(user)
        step = self._step(credential, code, after=None)
        if step is None:
            audit("mfa.failed", user_id=user.id, method=TOTP, enrolment=True)
            return None
        self.failures.refund(self._key(user))
        return step

    def _step(self, credential: TotpCredential, code: str, *, after: int | None) -> int | None:
        secret = self.box.decrypt(credential.secret_encrypted)
        return matching_step(secret, code, utcnow(), after=after)

    def _spend(self, user: User) -> None:
        try:
            self.failures.spend(self._key(user))
        except TooManyRequests:
            audit("mfa.throttled", user_id=user.id)
            raise

    @staticmethod
    def _key(user: User) -> str:
        return f"user:{user.id}"

    def _tell_recovery_code_used(self, user: User, uow: UnitOfWork) -> None:
        left = self.repository.recovery_codes_left(user.id)
        self.outbox.queue(
            user.email,
            compose(
                "A recovery code was used",
                [
                    "One of your recovery codes was just used to prove it is you "
                    f"(two-factor sign-in). {left} unused codes are left.",
                    "If it was not you, someone has your password and a recovery code: "
                    "change your password and make new recovery codes at once.",
                ],
            ),
            kind="mfa_recovery_code_used",
        )
        uow.on_commit(lambda: audit("mfa.recovery_code_used", user_id=user.id, left=left))


class MfaService:
    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        repository: MfaRepository,
        factors: SecondFactors,
        box: SecretBox,
        outbox: Outbox,
        uow: UnitOfWork,
        *,
        issuer: str,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.repository = repository
        self.factors = factors
        self.box = box
        self.outbox = outbox
        self.uow = uow
        self.issuer = issuer

    @classmethod
    def from_app(cls) -> MfaService:
        factors = SecondFactors.from_app()
        return cls(
            UserRepository(),
            SessionRepository(),
            factors.repository,
            factors,
            factors.box,
            factors.outbox,
            UnitOfWork(),
            issuer=current_app.config["MFA_ISSUER"],
        )

    def status(self, user: User) -> MfaStatus:
        return MfaStatus(
            totp=self.repository.has_confirmed_totp(user.id),
            passkeys=self.factors.passkeys.repository.count_for_user(user.id),
            recovery_codes_left=self.repository.recovery_codes_left(user.id),
            methods=self.factors.methods(user),
        )

    # -- enrolment ----------------------------------------------------------------
    def start_totp(self, user: User) -> TotpSetup:
        """A new pending secret (replacing a pending one); sign-in is unchanged
        until ``confirm_totp``."""
        if self.repository.has_confirmed_totp(user.id):
            raise TotpAlreadyOn()
        secret = new_totp_secret()
        with self.uow:
            self.repository.start_totp(user.id, self.box.encrypt(secret), utcnow())
        audit("mfa.enrolment_started", user_id=user.id)
        uri = provisioning_uri(secret, user.email, self.issuer)
        return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))

    def confirm_totp(self, user: User, code: str) -> list[str]:
        """Turn TOTP on with a code from the app; the new recovery codes, shown
        this once."""
        if self.repository.has_confirmed_totp(user.id):
            raise TotpAlreadyOn()
        credential = self.repository.get_totp(user.id)
        if credential is None:
            raise NoPendingEnrolment()
        step = self.factors.check_enrolment(user, credential, code)
        if step is None:
            raise WrongEnrolmentCode()
        codes = new_recovery_codes()
        with self.uow:
            if not self.repository.confirm_totp(user.id, step, utcnow()):
                raise NoPendingEnrolment()  # a concurrent confirmation won
            self._store_recovery_codes(user, codes)
            user.is_mfa_enabled = True
            self.users.save(user)
            self._tell(
                user,
                "Two-factor sign-in was turned on",
                "Signing in to your account now takes a code from your authenticator app "
                "(or one of your recovery codes) after the password.",
                kind="mfa_enabled",
            )
        audit("mfa.enabled", user_id=user.id)
        return codes

    def regenerate_recovery_codes(self, user: User) -> list[str]:
        """A new set of recovery codes; the old set stops working. Only with a
        second factor (the codes stand in for it)."""
        if not user.is_mfa_enabled:
            raise TotpOff()
        codes = new_recovery_codes()
        with self.uow:
            self._store_recovery_codes(user, codes)
        audit("mfa.recovery_codes_regenerated", user_id=user.id)
        return codes

    # -- removal ------------------------------------------------------------------
    def disable_totp(self, user: User, proof: Proof, *, keep_session: str) -> None:
        """Turn TOTP off with a current code (or a recovery code): the secret goes
        (and the recovery codes, unless a passkey remains), every other session
        ends, the owner is told."""
        if not self.repository.has_confirmed_totp(user.id):
            raise TotpOff("Two-factor sign-in with an app is already off.")
        with self.uow:
            method = self.factors.check(user, proof, self.uow)
            if method is None:
                raise WrongCode()  # nothing to keep: the budget has counted it
            self.repository.delete_totp(user.id)
            if not self.factors.passkeys.has_any(user):
                self._remove(user)
            self.sessions.revoke_all(user.id, utcnow(), keep=keep_session)
            self._tell(
                user,
                "Two-factor sign-in with an app was turned off",
                "Codes from your authenticator app no longer sign in to your account, "
                "and every other session was signed out.",
                kind="mfa_disabled",
            )
        audit("mfa.disabled", user_id=user.id, method=method)

    def admin_reset(self, actor: User, user_id: int) -> None:
        """An administrator removes a user's second factor (a lost phone): every
        session of theirs ends, and they are told."""
        with self.uow:
            user = self.users.get(user_id)
            if user is None:
                raise NotFound("User not found.")
            if (
                not user.is_mfa_enabled
                and self.repository.get_totp(user.id) is None
                and not self.factors.passkeys.has_any(user)
            ):
                raise NoSecondFactor()
            self.factors.passkeys.repository.delete_for_user(user.id)
            self._remove(user)
            # Whoever holds a session may be the one who took the phone.
            user.token_version += 1
            self.users.save(user)
            self.sessions.revoke_all(user.id, utcnow())
            self._tell(
                user,
                "Two-factor sign-in was removed by an administrator",
                "An administrator removed the second factor of your account, as asked "
                "when a phone is lost, and every session was signed out. Sign in with "
                "your password and set up two-factor sign-in again.",
                kind="mfa_reset",
            )
        audit("mfa.admin_reset", user_id=user_id, actor_id=actor.id)

    # -- keys -----------------------------------------------------------------------
    def rotate_encryption_key(self) -> int:
        """Re-encrypt every TOTP secret with the newest key; how many changed."""
        changed = 0
        with self.uow:
            for credential in self.repository.all_totp():
                if not self.box.is_current(credential.secret_encrypted):
                    credential.secret_encrypted = self.box.rotate(credential.secret_encrypted)
                    changed += 1
        audit("mfa.encryption_key_rotated", rows=changed)
        return changed

    # -- steps --------------------------------------------------------------------
    def _remove(self, user: User) -> None:
        """Every factor but passkeys goes: the account has no second factor left."""
        self.repository.delete_totp(user.id)
        self.repository.delete_recovery_codes(user.id)
        user.is_mfa_enabled = False
        self.users.save(user)

    def _store_recovery_codes(self, user: User, codes: list[str]) -> None:
        hashes = [recovery_code_hash(user.id, normalise_recovery_code(code)) for code in codes]
        self.repository.replace_recovery_codes(user.id, hashes, utcnow())

    def _tell(self, user: User, subject: str, what: str, *, kind: str) -> None:
        self.outbox.queue_notice(user.email, subject, what, kind=kind)
