"""All database access for sessions (refresh-token families), email tokens and
second factors lives here. Nothing here commits: the service's unit of work does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from myapp.auth.models import (
    ActionToken,
    AuthSession,
    MfaChallenge,
    OidcAuthorization,
    OidcIdentity,
    Passkey,
    RecoveryCode,
    TotpCredential,
    WebAuthnChallenge,
)
from myapp.database.unit_of_work import Repository
from myapp.users.models import User


class SessionRepository(Repository):
    def create(self, auth_session: AuthSession) -> AuthSession:
        """Add the session and flush it: its id goes into the tokens issued next."""
        self.session.add(auth_session)
        self.session.flush()
        return auth_session

    def create_if_unchanged(
        self, auth_session: AuthSession, password_hash: str, token_version: int
    ) -> bool:
        """Add the session (flushed) only if its user is still active with this
        password hash and token version; False, adding nothing, otherwise.

        The user's row stays share-locked until commit (PostgreSQL; SQLite runs
        writers one at a time anyway): a concurrent password change either waits
        and then revokes this session with the others, or commits first and this
        check sees it.
        """
        unchanged = self.session.execute(
            select(User.id)
            .where(
                User.id == auth_session.user_id,
                User.is_active.is_(True),
                User.password_hash == password_hash,
                User.token_version == token_version,
            )
            .with_for_update(read=True)
        ).first()
        if unchanged is None:
            return False
        self.create(auth_session)
        return True

    def get(self, session_id: str) -> AuthSession | None:
        return self.session.get(AuthSession, session_id)

    def get_active_for_user(
        self, session_id: str, user_id: int, now: datetime
    ) -> AuthSession | None:
        return self.session.scalar(
            self._active(now).where(AuthSession.id == session_id, AuthSession.user_id == user_id)
        )

    def list_active(self, user_id: int, now: datetime) -> list[AuthSession]:
        return list(
            self.session.scalars(
                self._active(now)
                .where(AuthSession.user_id == user_id)
                .order_by(AuthSession.created_at.desc(), AuthSession.id)
            )
        )

    def rotate(
        self, session_id: str, old_jti: str, new_jti: str, now: datetime, expires_at: datetime
    ) -> bool:
        """Swap the family's refresh jti if it is still ``old_jti``; True if we won.

        A compare-and-swap in one UPDATE: of two concurrent refreshes with the same
        token, the database lets exactly one match the WHERE clause.
        """
        result = self.session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.refresh_jti == old_jti,
                AuthSession.revoked_at.is_(None),
            )
            .values(refresh_jti=new_jti, last_used_at=now, expires_at=expires_at)
        )
        return self.matched(result) == 1

    def revoke(self, session_id: str, now: datetime) -> None:
        self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def revoke_all(self, user_id: int, now: datetime, *, keep: str | None = None) -> None:
        """Revoke every live session of the user, except ``keep`` when given."""
        statement = (
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if keep is not None:
            statement = statement.where(AuthSession.id != keep)
        self.session.execute(statement)

    def prune(self, now: datetime) -> int:
        """Delete sessions past their expiry (revoked or not); returns how many."""
        return self.matched(
            self.session.execute(delete(AuthSession).where(AuthSession.expires_at <= now))
        )

    @staticmethod
    def _active(now: datetime) -> Select[AuthSession]:
        return select(AuthSession).where(
            AuthSession.revoked_at.is_(None), AuthSession.expires_at > now
        )


class ActionTokenRepository(Repository):
    def add(self, token: ActionToken) -> ActionToken:
        self.session.add(token)
        return token

    def get_by_hash(self, token_hash: str) -> ActionToken | None:
        return self.session.scalar(select(ActionToken).where(ActionToken.token_hash == token_hash))

    def consume(self, token_id: int, now: datetime) -> bool:
        """Mark the token used if nobody did yet; True if we did (a compare-and-swap:
        of two concurrent uses, one wins)."""
        result = self.session.execute(
            update(ActionToken)
            .where(ActionToken.id == token_id, ActionToken.used_at.is_(None))
            .values(used_at=now)
        )
        return self.matched(result) == 1

    def prune(self, now: datetime) -> int:
        """Delete expired email tokens and login second steps (mfa_tokens)."""
        tokens = self.session.execute(delete(ActionToken).where(ActionToken.expires_at <= now))
        steps = self.session.execute(delete(MfaChallenge).where(MfaChallenge.expires_at <= now))
        webauthn = self.session.execute(
            delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now)
        )
        oidc = self.session.execute(
            delete(OidcAuthorization).where(OidcAuthorization.expires_at <= now)
        )
        return sum(self.matched(result) for result in (tokens, steps, webauthn, oidc))


class MfaRepository(Repository):
    """Second factors (TOTP secrets, recovery codes) and pending second steps."""

    # -- TOTP ---------------------------------------------------------------------
    def get_totp(self, user_id: int) -> TotpCredential | None:
        return self.session.get(TotpCredential, user_id)

    def start_totp(self, user_id: int, secret_encrypted: str, now: datetime) -> None:
        """Store a pending secret for the user, replacing a pending one."""
        credential = self.get_totp(user_id)
        if credential is None:
            self.session.add(
                TotpCredential(user_id=user_id, secret_encrypted=secret_encrypted, created_at=now)
            )
        else:
            credential.secret_encrypted, credential.created_at = secret_encrypted, now
            credential.last_used_step = None
        self.session.flush()

    def confirm_totp(self, user_id: int, step: int, now: datetime) -> bool:
        """Turn the pending secret on, recording the step of the code that proved
        it; False if it was not pending any more (a concurrent confirmation won)."""
        result = self.session.execute(
            update(TotpCredential)
            .where(TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_(None))
            .values(confirmed_at=now, last_used_step=step)
        )
        return self.matched(result) == 1

    def use_step(self, user_id: int, step: int) -> bool:
        """Record that the code of ``step`` was used, if no code of that step or a
        later one was; True if we did. A compare-and-swap: of two requests with one
        code, exactly one gets it."""
        result = self.session.execute(
            update(TotpCredential)
            .where(
                TotpCredential.user_id == user_id,
                (TotpCredential.last_used_step.is_(None)) | (TotpCredential.last_used_step < step),
            )
            .values(last_used_step=step)
        )
        return self.matched(result) == 1

    def all_totp(self) -> list[TotpCredential]:
        return list(self.session.scalars(select(TotpCredential)))

    def has_confirmed_totp(self, user_id: int) -> bool:
        credential = self.get_totp(user_id)
        return credential is not None and credential.confirmed_at is not None

    def delete_totp(self, user_id: int) -> None:
        self.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))

    def delete_recovery_codes(self, user_id: int) -> None:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))

    # -- recovery codes -----------------------------------------------------------
    def replace_recovery_codes(self, user_id: int, code_hashes: list[str], now: datetime) -> None:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        self.session.add_all(
            RecoveryCode(user_id=user_id, code_hash=code_hash, created_at=now)
            for code_hash in code_hashes
        )
        self.session.flush()

    def has_recovery_codes(self, user_id: int) -> bool:
        """Whether the user has a set of recovery codes (used up or not)."""
        return (
            self.session.scalar(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id))
            is not None
        )

    def recovery_codes_left(self, user_id: int) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            )
            or 0
        )

    def use_recovery_code(self, user_id: int, code_hash: str, now: datetime) -> bool:
        """Mark the user's unused code with this hash used; True if we did (of two
        concurrent uses of one code, exactly one wins)."""
        result = self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return self.matched(result) == 1

    # -- second steps of a login (mfa_token) ------------------------------------------
    def add_challenge(self, challenge: MfaChallenge) -> MfaChallenge:
        self.session.add(challenge)
        self.session.flush()
        return challenge

    def get_challenge(self, token_hash: str) -> MfaChallenge | None:
        return self.session.scalar(
            select(MfaChallenge).where(MfaChallenge.token_hash == token_hash)
        )

    def consume_challenge(self, challenge_id: int, now: datetime, max_attempts: int) -> bool:
        """Spend the challenge if it is unused with attempts left (the caller checked
        its expiry); True if we did."""
        result = self.session.execute(
            update(MfaChallenge)
            .where(
                MfaChallenge.id == challenge_id,
                MfaChallenge.used_at.is_(None),
                MfaChallenge.failed_attempts < max_attempts,
            )
            .values(used_at=now)
        )
        return self.matched(result) == 1

    def count_failure(self, challenge_id: int) -> None:
        # An increment in SQL: concurrent wrong codes all count.
        self.session.execute(
            update(MfaChallenge)
            .where(MfaChallenge.id == challenge_id)
            .values(failed_attempts=MfaChallenge.failed_attempts + 1)
        )


class PasskeyRepository(Repository):
    """Passkeys (WebAuthn credentials) and the challenges of their ceremonies."""

    def add(self, passkey: Passkey) -> Passkey:
        self.session.add(passkey)
        self.session.flush()
        return passkey

    def list_for_user(self, user_id: int) -> list[Passkey]:
        return list(
            self.session.scalars(
                select(Passkey)
                .where(Passkey.user_id == user_id)
                .order_by(Passkey.created_at, Passkey.id)
            )
        )

    def count_for_user(self, user_id: int) -> int:
        return (
            self.session.scalar(
                select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
            )
            or 0
        )

    def get_for_user(self, passkey_id: str, user_id: int) -> Passkey | None:
        return self.session.scalar(
            select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        )

    def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        return self.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id))

    def user_handle(self, user_id: int) -> bytes | None:
        """The WebAuthn user handle the user's passkeys carry, if they have any."""
        return self.session.scalar(
            select(Passkey.user_handle).where(Passkey.user_id == user_id).limit(1)
        )

    def use(self, passkey_id: str, sign_count: int, backed_up: bool, now: datetime) -> bool:
        """Record a use with the authenticator's new counter, if it went forward
        (or the authenticator keeps none: 0 and 0), and the key's backup state as
        it is now (WebAuthn: a key may start syncing later); False, changing nothing,
        for a counter that did not: a cloned authenticator, or a replayed assertion.
        A compare-and-swap: of two uses with one counter value, one wins."""
        result = self.session.execute(
            update(Passkey)
            .where(
                Passkey.id == passkey_id,
                (Passkey.sign_count < sign_count) | ((Passkey.sign_count == 0) & (sign_count == 0)),
            )
            .values(sign_count=sign_count, backed_up=backed_up, last_used_at=now)
        )
        return self.matched(result) == 1

    def delete(self, passkey: Passkey) -> None:
        self.session.delete(passkey)
        self.session.flush()

    def delete_for_user(self, user_id: int) -> None:
        self.session.execute(delete(Passkey).where(Passkey.user_id == user_id))

    # -- challenges ---------------------------------------------------------------
    def add_challenge(self, challenge: WebAuthnChallenge) -> WebAuthnChallenge:
        self.session.add(challenge)
        self.session.flush()
        return challenge

    def take_challenge(self, challenge_hash: str, now: datetime) -> WebAuthnChallenge | None:
        """The stored challenge with this hash, marked used; None if there is none
        or it was used already (of two answers to one challenge, one gets it)."""
        challenge = self.session.scalar(
            select(WebAuthnChallenge).where(WebAuthnChallenge.challenge_hash == challenge_hash)
        )
        if challenge is None:
            return None
        result = self.session.execute(
            update(WebAuthnChallenge)
            .where(WebAuthnChallenge.id == challenge.id, WebAuthnChallenge.used_at.is_(None))
            .values(used_at=now)
        )
        return challenge if self.matched(result) == 1 else None


class DuplicateIdentityError(Exception):
    """The database refused a second link of one provider identity."""


class OidcRepository(Repository):
    """Identities at OpenID Providers, and the sign-ins sent to them."""

    def add_authorization(self, authorization: OidcAuthorization) -> None:
        self.session.add(authorization)
        self.session.flush()

    def take_authorization(self, state_hash: str, now: datetime) -> OidcAuthorization | None:
        """The pending sign-in with this state, marked used; None if there is none
        or it was used already (of two callbacks with one state, one gets it)."""
        authorization = self.session.scalar(
            select(OidcAuthorization).where(OidcAuthorization.state_hash == state_hash)
        )
        if authorization is None:
            return None
        result = self.session.execute(
            update(OidcAuthorization)
            .where(OidcAuthorization.id == authorization.id, OidcAuthorization.used_at.is_(None))
            .values(used_at=now)
        )
        return authorization if self.matched(result) == 1 else None

    def identity(self, provider: str, subject: str) -> OidcIdentity | None:
        return self.session.scalar(
            select(OidcIdentity).where(
                OidcIdentity.provider == provider, OidcIdentity.subject == subject
            )
        )

    def identities_for(self, user_id: int) -> list[OidcIdentity]:
        return list(
            self.session.scalars(
                select(OidcIdentity)
                .where(OidcIdentity.user_id == user_id)
                .order_by(OidcIdentity.created_at, OidcIdentity.id)
            )
        )

    def identity_for_user(self, identity_id: str, user_id: int) -> OidcIdentity | None:
        return self.session.scalar(
            select(OidcIdentity).where(
                OidcIdentity.id == identity_id, OidcIdentity.user_id == user_id
            )
        )

    def count_for_user(self, user_id: int) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(OidcIdentity)
                .where(OidcIdentity.user_id == user_id)
            )
            or 0
        )

    def add_identity(self, identity: OidcIdentity) -> OidcIdentity:
        """Insert the link now; ``DuplicateIdentityError`` if that provider identity
        is linked already (a concurrent link won), the caller's transaction intact."""
        try:
            with self.session.begin_nested():
                self.session.add(identity)
        except IntegrityError as error:
            raise DuplicateIdentityError() from error  # the cause keeps the database's message
        return identity

    def delete_identity(self, identity: OidcIdentity) -> None:
        self.session.delete(identity)
        self.session.flush()
