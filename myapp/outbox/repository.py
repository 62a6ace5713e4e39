"""All database access for the outbox. Nothing here commits: the service's unit of
work does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from myapp.database.unit_of_work import Repository
from myapp.outbox.models import OutboxMessage, OutboxStatus


@dataclass(frozen=True)
class Claimed:
    """A message a worker holds until its lease ends: plain values, usable after the
    claiming transaction has committed."""

    id: int
    recipient: str
    kind: str
    subject: str
    text_body: str
    html_body: str | None
    attempts: int  # this delivery included

    @property
    def prepared(self) -> bool:
        return bool(self.subject)


class OutboxRepository(Repository):
    def add(self, message: OutboxMessage) -> OutboxMessage:
        self.session.add(message)
        return message

    def claim_due(self, now: datetime, batch: int, lease: timedelta) -> list[Claimed]:
        """Up to ``batch`` messages due now (pending and due, or claimed by a worker
        whose lease ran out), marked as claimed until ``now + lease``.

        On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``: workers
        claiming at the same time take different rows instead of waiting. SQLite
        runs one writer at a time, so claims there simply take turns.
        """
        due = or_(
            and_(
                OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now
            ),
            and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.locked_until <= now),
        )
        ids = list(
            self.session.scalars(
                select(OutboxMessage.id)
                .where(due)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(
                status=OutboxStatus.SENDING,
                locked_until=now + lease,
                attempts=OutboxMessage.attempts + 1,
            ),
            execution_options={"synchronize_session": False},
        )
        rows = self.session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.recipient,
                OutboxMessage.kind,
                OutboxMessage.subject,
                OutboxMessage.text_body,
                OutboxMessage.html_body,
                OutboxMessage.attempts,
            )
            .where(OutboxMessage.id.in_(ids))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        )
        return [Claimed(*row) for row in rows]

    def write(self, message_id: int, subject: str, text: str, html: str | None) -> None:
        """Fill in a message queued to be prepared later."""
        self._set(message_id, subject=subject, text_body=text, html_body=html)

    def mark_skipped(self, message_id: int, now: datetime) -> None:
        self._set(message_id, status=OutboxStatus.SKIPPED, sent_at=now, locked_until=None)

    def mark_sent(self, message_id: int, now: datetime) -> None:
        self._set(message_id, status=OutboxStatus.SENT, sent_at=now, locked_until=None)

    def reschedule(self, message_id: int, at: datetime, error: str) -> None:
        self._set(
            message_id,
            status=OutboxStatus.PENDING,
            next_attempt_at=at,
            locked_until=None,
            last_error=error,
        )

    def mark_failed(self, message_id: int, error: str) -> None:
        self._set(message_id, status=OutboxStatus.FAILED, locked_until=None, last_error=error)

    def release(self, message_ids: list[int]) -> None:
        """Hand claimed messages back unsent (a worker stopping): due at once, and
        the claim not counted as an attempt."""
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(message_ids), OutboxMessage.status == OutboxStatus.SENDING)
            .values(
                status=OutboxStatus.PENDING,
                locked_until=None,
                attempts=OutboxMessage.attempts - 1,
            ),
            execution_options={"synchronize_session": False},
        )

    def recent(self, status: str | None, limit: int) -> list[OutboxMessage]:
        statement = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if status is not None:
            statement = statement.where(OutboxMessage.status == status)
        return list(self.session.scalars(statement))

    def retry(self, message_ids: list[int] | None, now: datetime) -> int:
        """Make failed messages (these, or all) due again with a fresh count."""
        statement = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
        if message_ids is not None:
            statement = statement.where(OutboxMessage.id.in_(message_ids))
        return self.matched(
            self.session.execute(
                statement.values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now),
                execution_options={"synchronize_session": False},
            )
        )

    def prune_sent(self, before: datetime) -> int:
        """Delete the messages finished (sent, or skipped: nothing to send) before
        ``before``; pending and failed ones stay, whatever their age."""
        return self.matched(
            self.session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.status.in_((OutboxStatus.SENT, OutboxStatus.SKIPPED)),
                    OutboxMessage.sent_at < before,
                ),
                execution_options={"synchronize_session": False},
            )
        )

    def _set(self, message_id: int, **values: Any) -> None:
        self.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values),
            execution_options={"synchronize_session": False},
        )
