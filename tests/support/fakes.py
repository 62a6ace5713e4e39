"""Fakes for service unit tests: real behaviour, no database."""

from __future__ import annotations

from typing import Any


class FakeSession:
    """What ``UnitOfWork`` needs of a session (``info``, ``commit``, ``rollback``),
    counting the commits and rollbacks. Services under test get the real
    ``UnitOfWork`` on this session, so its rules (one commit, rollback on error,
    ``on_commit`` only after a commit) are the real ones."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.commits = 0
        self.rollbacks = 0

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1
