"""All database access for sessions (refresh-token families) lives here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, update

from myapp.auth.models import ActionToken, AuthSession
from myapp.database import Repository, attach_loaded, first_row
from myapp.users.models import User


# Built once: it runs on every authenticated request, and building the statement
# (not running it) was a third of the lookup's time. Columns, not the entity: it
# runs outside the ORM session (see first_row).
_USER_FOR_TOKEN = (
    select(*User.__table__.columns)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        User.is_active.is_(True),
        User.token_version == bindparam("version"),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > bindparam("now"),
    )
)


class SessionRepository(Repository):
    def create(self, auth_session: AuthSession) -> AuthSession:
        self.session.add(auth_session)
        self.session.commit()
        return auth_session

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

    def find_user_for_token(
        self, user_id: int, session_id: str, token_version: int, now: datetime
    ) -> User | None:
        """The user a token speaks for, in one round trip: the user must be active,
        at the token's version, and the token's session live.

        The user comes back attached to the session as if loaded by it, without a
        second query, so the services can change it like any loaded user.
        """
        row = first_row(
            _USER_FOR_TOKEN,
            {"user_id": user_id, "session_id": session_id, "version": token_version, "now": now},
        )
        return None if row is None else attach_loaded(self.session, User, row)

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
        self.session.commit()
        return result.rowcount == 1

    def revoke(self, session_id: str, now: datetime) -> None:
        self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        self.session.commit()

    def revoke_all(self, user_id: int, now: datetime, *, keep: str | None = None) -> None:
        """Revoke every live session of the user, except ``keep`` when given.

        Does not commit: callers revoke as part of a larger change (password,
        token version) that must land together.
        """
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
        result = self.session.execute(delete(AuthSession).where(AuthSession.expires_at <= now))
        self.session.commit()
        return result.rowcount

    @staticmethod
    def _active(now: datetime):
        return select(AuthSession).where(
            AuthSession.revoked_at.is_(None), AuthSession.expires_at > now
        )


class ActionTokenRepository(Repository):
    def add(self, token: ActionToken) -> ActionToken:
        self.session.add(token)
        self.session.commit()
        return token

    def get_by_hash(self, token_hash: str) -> ActionToken | None:
        return self.session.scalar(select(ActionToken).where(ActionToken.token_hash == token_hash))

    def consume(self, token_id: int, now: datetime) -> bool:
        """Mark the token used if nobody did yet; True if we did. Does not commit:
        the use and its effect (new password, verified flag) land together."""
        result = self.session.execute(
            update(ActionToken)
            .where(ActionToken.id == token_id, ActionToken.used_at.is_(None))
            .values(used_at=now)
        )
        return result.rowcount == 1

    def prune(self, now: datetime) -> int:
        result = self.session.execute(delete(ActionToken).where(ActionToken.expires_at <= now))
        self.session.commit()
        return result.rowcount
