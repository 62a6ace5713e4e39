"""The outbox and its worker against the real database and a real SMTP server.

Queue and delivery are separate use cases: a message is a row of the change that
causes it, then the worker claims due rows, sends each with no transaction open,
and records the outcome.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from myapp.database.unit_of_work import UnitOfWork
from myapp.extensions import db
from myapp.mail import EmailService, SMTPBackend
from myapp.outbox.compose import compose
from myapp.outbox.models import OutboxMessage, OutboxStatus
from myapp.outbox.repository import OutboxRepository
from myapp.outbox.service import Delivery, MailSettings, MailWorker, Outbox, OutboxAdmin
from tests.support.smtp import free_port, smtp_server

T0 = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)  # after any row the tests queue now
SETTINGS = MailSettings(
    batch=50,
    lease=timedelta(seconds=60),
    max_attempts=3,
    retry_base=timedelta(seconds=30),
    retry_max=timedelta(hours=1),
    keep_sent=timedelta(days=7),
)


def queue(*recipients: str) -> None:
    """One use case queueing a message per recipient (no eager delivery)."""
    with UnitOfWork():
        outbox = Outbox(OutboxRepository(), UnitOfWork())
        for to in recipients:
            outbox.queue(to, compose(f"Hello {to}", ["Body <b>one</b>."]), kind="test")


def worker(port: int, settings: MailSettings = SETTINGS, preparers=None) -> MailWorker:
    """A worker sending to the SMTP server on ``port``, jitter pinned to the full delay."""
    email = EmailService(SMTPBackend("127.0.0.1", port, starttls=False, timeout=2), "me@x.example")
    return MailWorker(
        OutboxRepository(), email, UnitOfWork(), settings, preparers=preparers, jitter=lambda: 1.0
    )


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


class TestQueue:
    def test_queue_when_use_case_rolls_back_leaves_no_row_and_sends_nothing(self, app):
        with smtp_server() as (server, inbox):
            with pytest.raises(RuntimeError), UnitOfWork():
                Outbox(OutboxRepository(), UnitOfWork()).queue(
                    "a@x.example", compose("Hi", ["Body."]), kind="test"
                )
                raise RuntimeError("the change failed")

            delivery = worker(server.port).deliver_due()

        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert (delivery.claimed, inbox.envelopes) == (0, [])

    def test_queue_when_use_case_commits_delivers_each_row_exactly_once(self, app):
        queue("a@x.example", "b@x.example", "c@x.example")
        with smtp_server() as (server, inbox):
            first = worker(server.port).deliver_due()
            again = worker(server.port).deliver_due()

        assert (first.claimed, first.sent, again.claimed) == (3, 3, 0)
        assert sorted(inbox.recipients) == ["a@x.example", "b@x.example", "c@x.example"]
        assert {(row.status, row.attempts) for row in rows()} == {(OutboxStatus.SENT, 1)}
        assert all(row.sent_at is not None and row.locked_until is None for row in rows())

    def test_delivery_when_message_has_html_sends_both_versions_escaped(self, app):
        queue("a@x.example")
        with smtp_server() as (server, inbox):
            worker(server.port).deliver_due()

        (message,) = inbox.messages()
        parts = {part.get_content_type(): part.get_payload() for part in message.walk()}
        assert message["Subject"] == "Hello a@x.example"
        assert "Body <b>one</b>." in parts["text/plain"]
        assert "Body &lt;b&gt;one&lt;/b&gt;." in parts["text/html"]


class TestBatches:
    def test_worker_when_not_told_a_batch_claims_the_configured_one(self, app, outbox, monkeypatch):
        monkeypatch.setitem(app.config, "MAIL_BATCH", 2)
        queue("a@x.example", "b@x.example", "c@x.example")

        delivery = MailWorker.from_app().deliver_due()

        assert (delivery.claimed, delivery.sent) == (2, 2)
        assert [message.to for message in outbox] == ["a@x.example", "b@x.example"]
        assert [row.status for row in rows()][2:] == [OutboxStatus.PENDING]  # the next round's

    def test_worker_when_told_a_batch_claims_that_many_whatever_is_configured(self, app):
        queue("a@x.example", "b@x.example")
        with smtp_server() as (server, inbox):
            delivery = worker(server.port).deliver_due(1)  # SETTINGS.batch is 50

        assert (delivery.claimed, inbox.recipients) == (1, ["a@x.example"])
        assert [row.status for row in rows()] == [OutboxStatus.SENT, OutboxStatus.PENDING]


class TestRetries:
    def test_delivery_when_smtp_down_then_back_retries_with_backoff_and_loses_nothing(
        self, app, caplog
    ):
        port = free_port()  # nothing listens yet: connection refused
        queue("a@x.example")
        with freeze_time(T0) as clock:
            with caplog.at_level(logging.WARNING, logger="myapp.outbox"):
                down = worker(port).deliver_due()
            (row,) = rows()
            assert row.last_error.startswith("Could not send email:")
            assert down == Delivery(claimed=1, retrying=1, errors=[row.last_error])
            assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
            assert row.next_attempt_at == T0 + timedelta(seconds=30)  # base delay
            (record,) = caplog.records
            assert record.getMessage() == (
                f"Email {row.id} not delivered (attempt 1): {row.last_error}"
            )

            clock.move_to(T0 + timedelta(seconds=29))
            assert worker(port).deliver_due().claimed == 0  # not due yet

            clock.move_to(T0 + timedelta(seconds=30))
            worker(port).deliver_due()
            (row,) = rows()
            assert (row.attempts, row.next_attempt_at) == (2, T0 + timedelta(seconds=90))

            clock.move_to(T0 + timedelta(seconds=90))
            with smtp_server(port) as (_, inbox):
                back = worker(port).deliver_due()

        (row,) = rows()
        assert (back.sent, row.status, row.attempts) == (1, OutboxStatus.SENT, 3)
        assert inbox.recipients == ["a@x.example"]

    def test_delivery_when_several_fail_in_one_round_counts_each(self, app):
        port = free_port()
        queue("a@x.example", "b@x.example")
        with freeze_time(T0) as clock:
            first = worker(port).deliver_due()
            for _ in range(SETTINGS.max_attempts - 1):
                clock.tick(SETTINGS.retry_max)
                last = worker(port).deliver_due()

        errors = [row.last_error for row in rows()]
        assert first == Delivery(claimed=2, retrying=2, errors=errors)
        assert last == Delivery(claimed=2, failed=2, errors=errors)

    def test_delivery_when_attempts_run_out_marks_failed_until_retried(self, app, caplog):
        port = free_port()
        queue("a@x.example")
        with freeze_time(T0) as clock:
            for _ in range(SETTINGS.max_attempts):
                last = worker(port).deliver_due()
                clock.tick(SETTINGS.retry_max)
            (row,) = rows()
            assert (row.status, row.attempts) == (OutboxStatus.FAILED, SETTINGS.max_attempts)
            assert row.last_error.startswith("Could not send email:")
            assert last == Delivery(claimed=1, failed=1, errors=[row.last_error])
            assert worker(port).deliver_due().claimed == 0  # failed is final...

            assert OutboxAdmin(OutboxRepository(), UnitOfWork(), SETTINGS).retry() == 1
            with smtp_server(port) as (_, inbox):
                worker(port).deliver_due()  # ...until an operator retries it

        assert rows()[0].status == OutboxStatus.SENT
        assert inbox.recipients == ["a@x.example"]
        assert f"Email {row.id} failed 3 times; giving up (flask mail-outbox retry {row.id})" in [
            record.getMessage() for record in caplog.records
        ]

    @pytest.mark.parametrize(
        ("attempts", "jitter", "seconds"),
        [(1, 1.0, 30), (2, 1.0, 60), (4, 1.0, 240), (1, 0.0, 15), (20, 1.0, 3600), (50, 0.5, 2700)],
    )
    def test_backoff_when_attempts_grow_doubles_up_to_the_maximum_with_jitter(
        self, attempts, jitter, seconds
    ):
        backoff = MailWorker(None, None, None, SETTINGS, jitter=lambda: jitter).backoff(attempts)

        assert backoff == timedelta(seconds=seconds)


class RecordingStop(threading.Event):
    """A stop event that records its waits instead of sleeping them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.is_set()


class TestRun:
    def scripted(self, stop: RecordingStop, claims: list[int]) -> tuple[MailWorker, list]:
        """A worker whose deliveries claim ``claims`` in turn; stop is set after the last."""
        mail = MailWorker(None, None, None, SETTINGS)
        calls = []

        def deliver_due(batch, event):
            calls.append((batch, event))
            if len(calls) == len(claims):
                stop.set()
            return Delivery(claimed=claims[len(calls) - 1])

        mail.deliver_due = deliver_due
        return mail, calls

    def test_run_when_work_keeps_coming_delivers_again_at_once_and_waits_only_when_idle(self):
        stop = RecordingStop()
        mail, calls = self.scripted(stop, [2, 3, 0, 1, 0])

        mail.run(stop, batch=7, poll=0.25)

        assert calls == [(7, stop)] * 5
        assert stop.waits == [0.25, 0.25]  # after each delivery that found nothing

    def test_run_when_stopped_before_starting_delivers_nothing(self):
        stop = RecordingStop()
        stop.set()
        mail, calls = self.scripted(stop, [1])

        mail.run(stop, batch=None, poll=1.0)

        assert (calls, stop.waits) == ([], [])


class TestLeases:
    def test_claim_when_a_worker_died_holding_it_is_retried_after_the_lease(self, app):
        queue("a@x.example")
        with freeze_time(T0) as clock:
            with UnitOfWork():  # a worker claims, then dies before sending
                OutboxRepository().claim_due(T0, 10, SETTINGS.lease)
            with smtp_server() as (server, inbox):
                clock.move_to(T0 + SETTINGS.lease - timedelta(seconds=1))
                early = worker(server.port).deliver_due()
                clock.move_to(T0 + SETTINGS.lease)
                late = worker(server.port).deliver_due()

        assert (early.claimed, late.sent) == (0, 1)
        assert inbox.recipients == ["a@x.example"]
        assert rows()[0].attempts == 2  # the dead worker's claim counted

    def test_lease_when_it_runs_out_mid_batch_leaves_the_rest_to_others_unsent(self, app):
        queue("a@x.example", "b@x.example", "c@x.example")
        with freeze_time(T0) as clock, smtp_server() as (server, inbox):
            mail = worker(server.port)
            send = mail.email.send

            def slow_send(*args):  # a relay that takes the whole lease
                send(*args)
                clock.tick(SETTINGS.lease)

            mail.email.send = slow_send
            delivery = mail.deliver_due()

        assert (delivery.sent, delivery.expired) == (1, 2)
        assert inbox.recipients == ["a@x.example"]  # b and c were not sent a second time
        assert [row.status for row in rows()][1:] == [OutboxStatus.SENDING] * 2  # due again

    def test_stop_when_set_mid_batch_finishes_the_message_and_hands_the_rest_back(self, app):
        queue("a@x.example", "b@x.example", "c@x.example")
        stop = threading.Event()
        with smtp_server() as (server, inbox):
            mail = worker(server.port)
            send = mail.email.send

            def send_then_stop(*args):
                send(*args)
                stop.set()  # SIGTERM arrives while the first message is being sent

            mail.email.send = send_then_stop
            delivery = mail.deliver_due(stop=stop)

        assert (delivery.sent, delivery.released) == (1, 2)
        assert inbox.recipients == ["a@x.example"]
        assert [(row.status, row.attempts) for row in rows()] == [
            (OutboxStatus.SENT, 1),
            (OutboxStatus.PENDING, 0),
            (OutboxStatus.PENDING, 0),
        ]


class TestPreparedByTheWorker:
    def test_message_when_no_preparer_for_its_kind_is_retried_not_sent(self, app, caplog):
        with UnitOfWork():
            Outbox(OutboxRepository(), UnitOfWork()).queue_to_prepare("a@x.example", "mystery")
        with smtp_server() as (server, inbox):
            delivery = worker(server.port).deliver_due()

        (row,) = rows()
        assert (delivery.retrying, inbox.envelopes) == (1, [])
        assert (row.status, row.last_error) == (
            OutboxStatus.PENDING,
            "nothing prepares messages of kind 'mystery'",
        )

    def test_message_when_prepared_is_written_and_sent_with_both_versions(self, app):
        with UnitOfWork():
            Outbox(OutboxRepository(), UnitOfWork()).queue_to_prepare("a@x.example", "greeting")
        preparers = {"greeting": lambda to: compose(f"Hello {to}", ["Welcome <back>."])}
        with smtp_server() as (server, inbox):
            delivery = worker(server.port, preparers=preparers).deliver_due()

        (row,) = rows()
        assert (delivery.sent, row.status, row.subject) == (
            1,
            OutboxStatus.SENT,
            "Hello a@x.example",
        )
        assert row.text_body == "Welcome <back>."
        assert "<p>Welcome &lt;back&gt;.</p>" in row.html_body
        (message,) = inbox.messages()
        parts = {part.get_content_type(): part.get_payload() for part in message.walk()}
        assert message["Subject"] == "Hello a@x.example"
        assert "Welcome &lt;back&gt;." in parts["text/html"]

    def test_message_when_preparer_has_nothing_to_send_is_skipped(self, app):
        with UnitOfWork():
            outbox = Outbox(OutboxRepository(), UnitOfWork())
            for to in ("a@x.example", "b@x.example"):
                outbox.queue_to_prepare(to, "greeting")
        with freeze_time(T0), smtp_server() as (server, inbox):
            delivery = worker(server.port, preparers={"greeting": lambda to: None}).deliver_due()

        assert delivery == Delivery(claimed=2, skipped=2)
        for row in rows():
            assert (row.status, row.sent_at, row.locked_until) == (OutboxStatus.SKIPPED, T0, None)
            assert (row.subject, row.text_body, row.html_body) == ("", "", None)  # never written
        assert inbox.envelopes == []
