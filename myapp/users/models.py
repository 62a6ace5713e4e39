from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, event, false, true
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from myapp.database.columns import UTCDateTime, utcnow
from myapp.extensions import Model, db
from myapp.users.counting import install_user_count

EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit
USERNAME_MIN_LENGTH = 3
USERNAME_MAX_LENGTH = 50
# Largest value of the INTEGER primary key on every supported database; larger ids
# cannot exist, and PostgreSQL would raise on the comparison instead of finding none.
MAX_ID = 2**31 - 1


class User(Model):
    __tablename__ = "users"
    # Orderings of the admin list: email and username use their unique indexes;
    # (created_at, id) serves "newest/oldest first" with a stable tie-break.
    __table_args__ = (Index("ix_users_created_at_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored normalised (trimmed, lower-case), so the unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    # Stored lower-case for the same reason: "Alice" and "alice" are one account.
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    # True while the user has a second factor (auth keeps it, in the same
    # transaction as the factor itself): users reads it without knowing factors.
    is_mfa_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A new address the user asked for, until a link sent there proves it (then it
    # becomes ``email``). Not unique: whoever proves an address first gets it.
    pending_email: Mapped[str | None] = mapped_column(String(EMAIL_MAX_LENGTH))
    # Bumping it invalidates every token issued before (tokens carry it as "ver").
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Python-side defaults: evaluated per row, in UTC, and controllable by freezegun.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:  # never the hash
        return f"<User id={self.id} username={self.username!r}>"


class RowCount(Model):
    """Exact row counts that database triggers keep up to date (users.counting)."""

    __tablename__ = "row_counts"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger)


@event.listens_for(db.metadata, "after_create")
def _install_counts(target: Any, connection: Connection, **kw: Any) -> None:
    install_user_count(connection)  # create_all builds what the migrations build
