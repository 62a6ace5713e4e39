"""Queueing email inside a use case, and delivering it from the outbox.

``Outbox.queue`` is a step of another service's use case: the row lands with the
change or not at all. ``MailWorker.deliver_due`` is a loop of small use cases:
one claim of due messages, then one outcome per message; no transaction is open
while the SMTP server is talking.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

from flask import Flask, current_app

from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.extensions import mail
from myapp.mail import EmailDeliveryError, EmailService
from myapp.outbox.compose import Composed, security_notice
from myapp.outbox.models import OutboxMessage, OutboxStatus
from myapp.outbox.repository import Claimed, OutboxRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailSettings:
    batch: int
    lease: timedelta
    max_attempts: int
    retry_base: timedelta
    retry_max: timedelta
    keep_sent: timedelta

    @classmethod
    def from_config(cls) -> MailSettings:
        config = current_app.config
        return cls(
            batch=int(config["MAIL_BATCH"]),
            lease=timedelta(seconds=config["MAIL_LEASE_SECONDS"]),
            max_attempts=int(config["MAIL_MAX_ATTEMPTS"]),
            retry_base=timedelta(seconds=config["MAIL_RETRY_BASE_SECONDS"]),
            retry_max=timedelta(seconds=config["MAIL_RETRY_MAX_SECONDS"]),
            keep_sent=timedelta(days=config["MAIL_KEEP_SENT_DAYS"]),
        )


@dataclass
class Delivery:
    """What one round of ``deliver_due`` did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0
    expired: int = 0
    errors: list[str] = field(default_factory=list)


# Writes a message queued to be prepared later: its email for this address, or None
# when there is nothing to send. Runs inside the worker's use case.
Preparer = Callable[[str], Composed | None]
PREPARERS_KEY = "myapp.outbox.preparers"


def prepare_with(app: Flask, kind: str, preparer: Preparer) -> None:
    """Make the worker write messages of ``kind`` with ``preparer`` (a domain's)."""
    app.extensions.setdefault(PREPARERS_KEY, {})[kind] = preparer


def deliver_after_commit() -> None:
    """MAIL_EAGER: deliver what is due right after a use case commits, in-process
    (development and tests need no worker). One function, so a use case that
    queues several messages registers it once."""
    MailWorker.from_app().deliver_due()


class Outbox:
    def __init__(
        self,
        messages: OutboxRepository,
        uow: UnitOfWork,
        *,
        deliver_now: Callable[[], None] | None = None,
    ) -> None:
        self.messages = messages
        self.uow = uow
        self.deliver_now = deliver_now

    @classmethod
    def from_app(cls) -> Outbox:
        eager = bool(current_app.config["MAIL_EAGER"])
        return cls(
            OutboxRepository(), UnitOfWork(), deliver_now=deliver_after_commit if eager else None
        )

    def queue_notice(self, to: str, subject: str, what: str, *, kind: str) -> None:
        """Queue a security notice: a way into the owner's account changed."""
        self.queue(to, security_notice(subject, what), kind)

    def queue(self, to: str, message: Composed, kind: str) -> None:
        """A step inside the caller's use case: the message is a row of its
        transaction, delivered once that commits."""
        self._add(
            OutboxMessage(
                recipient=to,
                subject=message.subject,
                kind=kind,
                text_body=message.text,
                html_body=message.html,
            )
        )

    def queue_to_prepare(self, to: str, kind: str) -> None:
        """A step inside the caller's use case: a message that the worker writes
        when it delivers it (``prepare_with``), so that the request does the same
        work whatever the message turns out to be."""
        self._add(OutboxMessage(recipient=to, subject="", text_body="", kind=kind))

    def _add(self, message: OutboxMessage) -> None:
        self.messages.add(message)
        if self.deliver_now is not None:
            self.uow.on_commit(self.deliver_now)


class MailWorker:
    def __init__(
        self,
        messages: OutboxRepository,
        email: EmailService,
        uow: UnitOfWork,
        settings: MailSettings,
        *,
        preparers: Mapping[str, Preparer] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.messages = messages
        self.email = email
        self.uow = uow
        self.settings = settings
        self.preparers = preparers or {}
        self.jitter = jitter

    @classmethod
    def from_app(cls) -> MailWorker:
        return cls(
            OutboxRepository(),
            mail.service,
            UnitOfWork(),
            MailSettings.from_config(),
            preparers=current_app.extensions.get(PREPARERS_KEY),  # None: no domain prepares
        )

    def deliver_due(
        self, batch: int | None = None, stop: threading.Event | None = None
    ) -> Delivery:
        """Claim up to ``batch`` due messages and deliver them one by one. When
        ``stop`` is set, the message being sent is finished and the rest handed
        back, due at once for the next worker."""
        delivery = Delivery()
        claimed_at = utcnow()
        with self.uow:
            claimed = self.messages.claim_due(
                claimed_at, batch or self.settings.batch, self.settings.lease
            )
        delivery.claimed = len(claimed)
        for position, message in enumerate(claimed):
            if stop is not None and stop.is_set():
                rest = [later.id for later in claimed[position:]]
                with self.uow:
                    self.messages.release(rest)
                delivery.released = len(rest)
                break
            if utcnow() >= claimed_at + self.settings.lease:
                # The lease ran out (a slow relay): the rest may be another worker's
                # by now. Sending them too would send them twice; they stay due.
                delivery.expired = len(claimed) - position
                break
            self._deliver(message, delivery)
        return delivery

    def run(self, stop: threading.Event, batch: int | None, poll: float) -> None:
        """Deliver until ``stop`` is set, waiting ``poll`` seconds when nothing is due."""
        while not stop.is_set():
            if self.deliver_due(batch, stop).claimed == 0:
                stop.wait(poll)

    def _deliver(self, message: Claimed, delivery: Delivery) -> None:
        if not message.prepared:
            prepared = self._prepare(message, delivery)
            if prepared is None:
                return
            message = prepared
        try:
            self.email.send(
                message.recipient, message.subject, message.text_body, message.html_body
            )
        except EmailDeliveryError as error:
            self._failed(message, str(error), delivery)
            return
        with self.uow:
            self.messages.mark_sent(message.id, utcnow())
        delivery.sent += 1

    def _prepare(self, message: Claimed, delivery: Delivery) -> Claimed | None:
        """Write a message queued to be prepared (what it needs, such as a token,
        lands with it), or mark it skipped when there is nothing to send."""
        preparer = self.preparers.get(message.kind)
        if preparer is None:
            self._failed(message, f"nothing prepares messages of kind {message.kind!r}", delivery)
            return None
        with self.uow:
            written = preparer(message.recipient)
            if written is None:
                self.messages.mark_skipped(message.id, utcnow())
            else:
                self.messages.write(message.id, written.subject, written.text, written.html)
        if written is None:
            delivery.skipped += 1
            return None
        return replace(
            message, subject=written.subject, text_body=written.text, html_body=written.html
        )

    def _failed(self, message: Claimed, error: str, delivery: Delivery) -> None:
        delivery.errors.append(error)
        if message.attempts >= self.settings.max_attempts:
            with self.uow:
                self.messages.mark_failed(message.id, error)
            delivery.failed += 1
            logger.error(
                "Email %s failed %s times; giving up (flask mail-outbox retry %s)",
                message.id,
                message.attempts,
                message.id,
            )
            return
        with self.uow:
            self.messages.reschedule(message.id, utcnow() + self.backoff(message.attempts), error)
        delivery.retrying += 1
        logger.warning(
            "Email %s not delivered (attempt %s): %s", message.id, message.attempts, error
        )

    def backoff(self, attempts: int) -> timedelta:
        """Exponential (base, 2x base, 4x base, ... up to the maximum), then from half
        to all of it at random, so messages that failed together do not all come
        back together."""
        ceiling = min(
            self.settings.retry_max, self.settings.retry_base * (1 << min(attempts - 1, 20))
        )
        return ceiling * (0.5 + self.jitter() / 2)


class OutboxAdmin:
    """The operators' use cases (``flask mail-outbox``, ``flask prune-tokens``)."""

    def __init__(self, messages: OutboxRepository, uow: UnitOfWork, settings: MailSettings) -> None:
        self.messages = messages
        self.uow = uow
        self.settings = settings

    @classmethod
    def from_app(cls) -> OutboxAdmin:
        return cls(OutboxRepository(), UnitOfWork(), MailSettings.from_config())

    def recent(self, status: OutboxStatus | None, limit: int) -> list[OutboxMessage]:
        return self.messages.recent(status, limit)

    def retry(self, message_ids: list[int] | None = None) -> int:
        """Make failed messages (these, or every failed one) due again."""
        with self.uow:
            count = self.messages.retry(message_ids, utcnow())
        return count

    def prune_sent(self) -> int:
        """Delete sent (and skipped) messages older than MAIL_KEEP_SENT_DAYS."""
        with self.uow:
            count = self.messages.prune_sent(utcnow() - self.settings.keep_sent)
        return count
