"""An email waiting to be delivered, being delivered, delivered or given up on."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from myapp.database.columns import UTCDateTime, utcnow
from myapp.extensions import Model


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    SENDING = "sending"  # claimed by a worker until locked_until (its lease)
    SENT = "sent"
    FAILED = "failed"  # gave up after MAIL_MAX_ATTEMPTS; `flask mail-outbox retry`
    SKIPPED = "skipped"  # prepared by the worker, and there was nothing to send


class OutboxMessage(Model):
    __tablename__ = "email_outbox"
    # The worker's question, "what is due?", is answered from this index.
    __table_args__ = (Index("ix_email_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    # Empty until written: a message queued to be prepared by the worker
    # (Outbox.queue_to_prepare) gets its subject and bodies there.
    subject: Mapped[str] = mapped_column(String(255))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    # What the message is (password_reset, password_changed, ...): for operators.
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:  # never the body: it may carry a token
        return f"<OutboxMessage id={self.id} kind={self.kind!r} status={self.status!r}>"
