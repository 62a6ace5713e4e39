"""All database access for users lives here. Nothing here commits: the service's
unit of work does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from myapp.database.reads import attach_loaded, first_row, read_rows
from myapp.database.unit_of_work import Repository
from myapp.extensions import db
from myapp.users.counting import USERS
from myapp.users.models import MAX_ID, RowCount, User

__all__ = ["MAX_ID", "DuplicateUserError", "UserRepository", "UserSearch"]


def escape_like(value: str) -> str:
    """Make ``%`` and ``_`` in user input match themselves in a LIKE pattern."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class UserSearch:
    page: int = 1
    per_page: int = 20
    q: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None
    is_verified: bool | None = None
    mfa: bool | None = None
    sort: str = "created_at"


# Deeper than this, a page skips over the index first (see search).
SKIP_OVER_INDEX_FROM = 1000
_USER_COLUMNS = select(*User.__table__.columns)
_USER_TOTAL = select(RowCount.total).where(RowCount.name == USERS)
_BY_EMAIL = _USER_COLUMNS.where(User.email == bindparam("value"))
_BY_USERNAME = _USER_COLUMNS.where(User.username == bindparam("value"))


class DuplicateUserError(Exception):
    """The database refused a user whose email or username already exists."""


class UserRepository(Repository):
    def get(self, user_id: int) -> User | None:
        if not 0 < user_id <= MAX_ID:
            return None
        return self.session.get(User, user_id)

    def get_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def get_by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def find_for_login(
        self, *, email: str | None = None, username: str | None = None
    ) -> User | None:
        """The user a login names, read outside any transaction (first_row).

        The password check that follows takes a fifth of a second: no transaction
        may stay open meanwhile, holding a connection (and on SQLite the write lock).
        """
        column, value = (_BY_EMAIL, email) if email is not None else (_BY_USERNAME, username)
        row = first_row(column, {"value": value})
        return None if row is None else attach_loaded(self.session, User, row)

    def find_conflicts(
        self, email: str | None, username: str | None, *, exclude_id: int | None = None
    ) -> tuple[bool, bool]:
        """(email taken, username taken) by another user, in one query.

        Inputs must be normalised; ``None`` means "not changing". ``exclude_id`` is
        the user being changed, who may keep their own values.
        """
        conditions = []
        if email is not None:
            conditions.append(User.email == email)
        if username is not None:
            conditions.append(User.username == username)
        if not conditions:
            return False, False
        statement = select(User.email, User.username).where(or_(*conditions))
        if exclude_id is not None:
            statement = statement.where(User.id != exclude_id)
        # Outside the transaction: registration hashes the password next, and no
        # transaction (on SQLite: the write lock) may stay open meanwhile. The
        # unique constraints, not this check, are the guard against races.
        rows = read_rows(statement, {})
        return (
            email is not None and any(row.email == email for row in rows),
            username is not None and any(row.username == username for row in rows),
        )

    def search(self, criteria: UserSearch) -> tuple[list[Row], int]:
        """One page of users matching ``criteria``, and how many match in all.

        The page comes as read-only rows (attributes named like a User's): a
        listing changes nothing, so it skips the ORM and the session's transaction,
        and costs two round trips, the total and the page (read_rows).
        """
        conditions = []
        if criteria.q:
            pattern = "%" + escape_like(criteria.q.lower()) + "%"
            conditions.append(
                or_(
                    User.email.like(pattern, escape="\\"),
                    User.username.like(pattern, escape="\\"),
                )
            )
        for flag, column in (
            ("is_active", User.is_active),
            ("is_admin", User.is_admin),
            ("is_verified", User.is_verified),
            ("mfa", User.is_mfa_enabled),
        ):
            value = getattr(criteria, flag)
            if value is not None:
                conditions.append(column.is_(value))
        # Unfiltered, the triggers keep the total: one primary-key read, not a count.
        counted = None if conditions else first_row(_USER_TOTAL, {})
        if counted is None:  # filtered, or the counter's row was deleted by hand
            counted = read_rows(select(func.count()).select_from(User).where(*conditions), {})[0]
        total: int = counted[0]
        start = (criteria.page - 1) * criteria.per_page
        end = min(start + criteria.per_page, total)
        if start >= end:
            return [], total  # past the last page
        column = getattr(User, criteria.sort.lstrip("-"))
        descending = criteria.sort.startswith("-")
        # A deep page costs the rows skipped before it. Past the middle, skip from
        # the other end instead (the total is exact), so no page skips more than
        # half the rows: page 4000 of 5000 skips 20,000 rows, not 80,000.
        from_end = start > total - end
        if from_end:
            descending = not descending
            start, end = total - end, total - start
        # id breaks ties (equal created_at), so pages never overlap or skip rows.
        order = (column.desc(), User.id.desc()) if descending else (column.asc(), User.id.asc())
        if start < SKIP_OVER_INDEX_FROM:
            page = _USER_COLUMNS.where(*conditions).order_by(*order)
        else:
            # Skip over the index alone (the ids), then fetch just the page's rows.
            ids = (
                select(User.id)
                .where(*conditions)
                .order_by(*order)
                .offset(start)
                .limit(end - start)
                .subquery()
            )
            page = _USER_COLUMNS.join(ids, User.id == ids.c.id).order_by(*order)
            start = 0
        rows = read_rows(page.offset(start).limit(end - start), {})
        if from_end:
            rows.reverse()
        return rows, total

    def delete(self, user: User) -> None:
        """Delete the user (at the next flush); the database cascades to sessions
        and email tokens."""
        self.session.delete(user)

    def add(self, user: User) -> User:
        """Insert the user now (flush); ``DuplicateUserError`` if a unique constraint
        refuses it. A refused insert is undone alone (a savepoint), so the caller's
        transaction stays usable.

        The constraint is the real guard: two concurrent registrations can both pass
        a prior existence check, and only one insert may win.
        """
        try:
            with self.session.begin_nested():
                self.session.add(user)
        except IntegrityError as error:
            raise DuplicateUserError() from error  # the cause keeps the database's message
        return user

    def save(self, user: User) -> User:
        """Write the user's pending changes now (flush), ``DuplicateUserError`` as in
        ``add``; after that error the use case must roll back (its unit of work does)."""
        self.session.add(user)  # a no-op for a loaded user; a detached one is attached
        try:
            self.session.flush()
        except IntegrityError as error:
            raise DuplicateUserError() from error  # the cause keeps the database's message
        return user

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Insert plain rows in bulk (one statement, no ORM objects)."""
        self.session.execute(insert(User), rows)

    def refresh_planner_statistics(self) -> None:
        """After a bulk load: fresh planner statistics (else the planner estimates
        from an empty table). Both databases take the same statement."""
        self.session.execute(text("ANALYZE users"))

    def vacuum(self) -> None:
        """After a bulk load on PostgreSQL: a visibility map, without which the
        list's index-only scans fetch every row anyway (autovacuum would get there
        later). VACUUM cannot run inside a transaction, so it runs on a connection
        of its own, and not at all when an outer transaction wraps the app (tests)."""
        bind = db.engine
        if bind.dialect.name != "postgresql" or isinstance(bind, Connection):
            return
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM users"))
