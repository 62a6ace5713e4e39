"""A use case's transaction: its service commits it once, at its end; repositories
work inside it and never commit."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.orm import Session, scoped_session

from myapp.extensions import db

# Both are the app's session: db.session is the scoped proxy of one Session per app context.
DbSession = Session | scoped_session[Any]

_IN_USE_CASE = "myapp.in_use_case"
_ON_COMMIT = "myapp.on_commit"


class UnitOfWork:
    """The transaction of one use case, on the app's session.

    A service method does its writes inside ``with self.uow:``. Leaving the block
    commits, once; an exception rolls everything back, so a use case that fails
    half-way leaves nothing behind. Reads outside the block (the token check, the
    login lookup) run outside the transaction, so none is held during a password
    hash.

    ``on_commit(callback)`` defers what must happen only once the change has landed,
    such as sending the email that carries a token stored by the change.
    """

    def __init__(self, session: DbSession | None = None) -> None:
        self.session: DbSession = session if session is not None else db.session

    def __enter__(self) -> UnitOfWork:
        if self.session.info.get(_IN_USE_CASE):
            # One use case, one commit: a use case calling another would commit twice.
            raise RuntimeError("a use case started inside another; call the inner steps instead")
        self.session.info[_IN_USE_CASE] = True
        self.session.info[_ON_COMMIT] = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        callbacks: list[Callable[[], None]] = self.session.info.pop(_ON_COMMIT, [])
        self.session.info.pop(_IN_USE_CASE, None)
        if exc_type is not None:
            self.session.rollback()
            return
        try:
            self.session.commit()
        except BaseException:
            self.session.rollback()  # a failed flush leaves the session unusable until then
            raise
        for callback in callbacks:
            callback()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after this use case commits (once, however often it is
        registered); never if it rolls back."""
        if not self.session.info.get(_IN_USE_CASE):
            raise RuntimeError("on_commit outside a use case: nothing would ever commit it")
        callbacks = self.session.info[_ON_COMMIT]
        if callback not in callbacks:
            callbacks.append(callback)


class Repository:
    """Base of the repositories: they work in the app's session (the current use
    case's transaction), and never commit."""

    def __init__(self) -> None:
        self.session: DbSession = db.session

    @staticmethod
    def matched(result: Result[Any]) -> int:
        """Rows an UPDATE or DELETE matched: DML returns a CursorResult, which
        ``Session.execute`` is not typed to say."""
        return cast(CursorResult[Any], result).rowcount
