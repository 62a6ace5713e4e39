"""All database access for sessions (refresh-token families) and email tokens lives
here. Nothing here commits: the service's unit of work does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, select, update

from myapp.auth.models import ActionToken, AuthSession
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
        return self.matched(
            self.session.execute(delete(ActionToken).where(ActionToken.expires_at <= now))
        )
