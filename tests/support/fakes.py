"""Fakes for service unit tests: real behaviour, no database."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class FakeUnitOfWork:
    """Behaves like ``myapp.database.unit_of_work.UnitOfWork`` without a database:
    counts what a use case committed or rolled back, and runs ``on_commit``
    callbacks after a commit only, as the real one does."""

    def __init__(self) -> None:
        self.commits = 0
        self.rollbacks = 0
        self._callbacks: list[Callable[[], None]] = []

    def __enter__(self) -> FakeUnitOfWork:
        self._callbacks = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        callbacks, self._callbacks = self._callbacks, []
        if exc_type is not None:
            self.rollbacks += 1
            return
        self.commits += 1
        for callback in callbacks:
            callback()

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
