"""The outbox repository against the real database (unittest style, rollback-isolated):
what each state change writes and clears, the edges of every time window, the order
and size of every list, and that each update touches only the rows it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from myapp.outbox.models import OutboxMessage, OutboxStatus
from myapp.outbox.repository import Claimed, OutboxRepository
from tests.support.testcase import DatabaseTestCase

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
LEASE = timedelta(seconds=60)


class OutboxRepositoryTestCase(DatabaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.outbox = OutboxRepository()

    def message(self, recipient="a@x.example", **values) -> OutboxMessage:
        row = OutboxMessage(
            recipient=recipient,
            subject=values.pop("subject", f"Hello {recipient}"),
            text_body="Body.",
            kind="test",
            **{"next_attempt_at": NOW, **values},
        )
        self.outbox.add(row)
        self.outbox.session.flush()
        return row

    def stored(self, row: OutboxMessage) -> OutboxMessage:
        """The row as the database holds it now (updates here skip the identity map)."""
        self.outbox.session.expire_all()
        return self.outbox.session.get(OutboxMessage, row.id)

    def ids(self, rows) -> list[int]:
        return [row.id for row in rows]


class TestClaimDue(OutboxRepositoryTestCase):
    def test_claim_when_due_or_lease_over_takes_them_in_due_order(self):
        later = self.message("later@x.example", next_attempt_at=NOW - SECOND)
        first = self.message("first@x.example", next_attempt_at=NOW - 2 * SECOND)
        at_now = self.message("now@x.example")
        abandoned = self.message(
            "abandoned@x.example",
            status=OutboxStatus.SENDING,
            next_attempt_at=NOW - 3 * SECOND,
            locked_until=NOW,  # its worker's lease ends this instant
        )

        claimed = self.outbox.claim_due(NOW, 10, LEASE)

        self.assertEqual([c.id for c in claimed], self.ids([abandoned, first, later, at_now]))

    def test_claim_when_not_due_or_held_or_finished_leaves_them(self):
        self.message("future@x.example", next_attempt_at=NOW + SECOND)
        self.message("held@x.example", status=OutboxStatus.SENDING, locked_until=NOW + SECOND)
        for status in (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SKIPPED):
            self.message(f"{status}@x.example", status=status, next_attempt_at=NOW - SECOND)

        self.assertEqual(self.outbox.claim_due(NOW, 10, LEASE), [])

    def test_claim_when_more_are_due_than_the_batch_takes_the_earliest(self):
        rows = [self.message(f"{n}@x.example", next_attempt_at=NOW - n * SECOND) for n in range(3)]

        claimed = self.outbox.claim_due(NOW, 2, LEASE)

        self.assertEqual([c.id for c in claimed], self.ids([rows[2], rows[1]]))
        self.assertEqual(self.stored(rows[0]).status, OutboxStatus.PENDING)

    def test_claim_when_due_at_the_same_moment_takes_them_in_the_order_queued(self):
        rows = [self.message(f"{n}@x.example") for n in range(4)]
        for row in reversed(rows[:2]):
            # Filling a message in rewrites its row: on PostgreSQL the new version
            # goes to the table's end, so a scan meets the first two last, the
            # second before the first.
            self.outbox.write(row.id, "Prepared", "Body.", None)

        claimed = self.outbox.claim_due(NOW, 2, LEASE)

        self.assertEqual([c.id for c in claimed], self.ids(rows[:2]))

    def test_claim_when_taken_leases_counts_and_returns_plain_values(self):
        row = self.message(html_body="<p>Body.</p>", attempts=2)

        (claimed,) = self.outbox.claim_due(NOW, 10, LEASE)

        self.assertEqual(
            claimed,
            Claimed(row.id, "a@x.example", "test", "Hello a@x.example", "Body.", "<p>Body.</p>", 3),
        )
        stored = self.stored(row)
        self.assertEqual(
            (stored.status, stored.locked_until, stored.attempts),
            (OutboxStatus.SENDING, NOW + LEASE, 3),
        )

    def test_claimed_when_subject_is_empty_is_not_prepared(self):
        self.message(subject="")

        (claimed,) = self.outbox.claim_due(NOW, 10, LEASE)

        self.assertFalse(claimed.prepared)


class TestOutcomes(OutboxRepositoryTestCase):
    """Each outcome of a delivery: what it records, what it clears, and that the
    other message of the batch is left as it was."""

    def setUp(self) -> None:
        super().setUp()
        held = {"status": OutboxStatus.SENDING, "locked_until": NOW + LEASE, "attempts": 1}
        self.row = self.message(**held)
        self.other = self.message("other@x.example", **held)

    def state(self, row) -> tuple:
        stored = self.stored(row)
        return (
            stored.status,
            stored.locked_until,
            stored.sent_at,
            stored.next_attempt_at,
            stored.last_error,
            stored.attempts,
        )

    def assert_other_untouched(self) -> None:
        self.assertEqual(
            self.state(self.other), (OutboxStatus.SENDING, NOW + LEASE, None, NOW, None, 1)
        )

    def test_mark_sent_when_delivered_records_when_and_ends_the_lease(self):
        self.outbox.mark_sent(self.row.id, NOW + SECOND)

        self.assertEqual(
            self.state(self.row), (OutboxStatus.SENT, None, NOW + SECOND, NOW, None, 1)
        )
        self.assert_other_untouched()

    def test_mark_skipped_when_nothing_to_send_records_when_and_ends_the_lease(self):
        self.outbox.mark_skipped(self.row.id, NOW + SECOND)

        self.assertEqual(
            self.state(self.row), (OutboxStatus.SKIPPED, None, NOW + SECOND, NOW, None, 1)
        )
        self.assert_other_untouched()

    def test_reschedule_when_delivery_failed_makes_it_due_later_with_the_error(self):
        self.outbox.reschedule(self.row.id, NOW + LEASE, "relay refused")

        self.assertEqual(
            self.state(self.row),
            (OutboxStatus.PENDING, None, None, NOW + LEASE, "relay refused", 1),
        )
        self.assert_other_untouched()

    def test_mark_failed_when_attempts_ran_out_keeps_the_error_and_ends_the_lease(self):
        self.outbox.mark_failed(self.row.id, "relay refused")

        self.assertEqual(
            self.state(self.row), (OutboxStatus.FAILED, None, None, NOW, "relay refused", 1)
        )
        self.assert_other_untouched()

    def test_write_when_prepared_fills_in_subject_and_bodies_only(self):
        self.outbox.write(self.row.id, "Subject", "Text.", "<p>Text.</p>")

        stored = self.stored(self.row)
        self.assertEqual(
            (stored.subject, stored.text_body, stored.html_body, stored.status),
            ("Subject", "Text.", "<p>Text.</p>", OutboxStatus.SENDING),
        )
        self.assertEqual(self.stored(self.other).subject, "Hello other@x.example")


class TestRelease(OutboxRepositoryTestCase):
    def test_release_when_worker_stops_hands_back_only_the_named_claims_uncounted(self):
        held = {"status": OutboxStatus.SENDING, "locked_until": NOW + LEASE, "attempts": 2}
        named, kept = (
            self.message("named@x.example", **held),
            self.message("kept@x.example", **held),
        )
        sent = self.message("sent@x.example", status=OutboxStatus.SENT, attempts=2)

        self.outbox.release([named.id, sent.id])

        states = [
            (row.status, row.locked_until, row.attempts)
            for row in map(self.stored, (named, kept, sent))
        ]
        self.assertEqual(
            states,
            [
                (OutboxStatus.PENDING, None, 1),
                (OutboxStatus.SENDING, NOW + LEASE, 2),
                (OutboxStatus.SENT, None, 2),  # finished meanwhile: not handed back
            ],
        )


class TestRetry(OutboxRepositoryTestCase):
    def setUp(self) -> None:
        super().setUp()
        failed = {"status": OutboxStatus.FAILED, "attempts": 8, "next_attempt_at": NOW - LEASE}
        self.first = self.message("first@x.example", **failed)
        self.second = self.message("second@x.example", **failed)
        self.pending = self.message("pending@x.example", attempts=3)

    def state(self, row) -> tuple:
        stored = self.stored(row)
        return stored.status, stored.attempts, stored.next_attempt_at

    def test_retry_when_ids_given_makes_those_failed_due_now_with_a_fresh_count(self):
        count = self.outbox.retry([self.first.id, self.pending.id], NOW)

        self.assertEqual(count, 1)
        self.assertEqual(
            [self.state(row) for row in (self.first, self.second, self.pending)],
            [
                (OutboxStatus.PENDING, 0, NOW),
                (OutboxStatus.FAILED, 8, NOW - LEASE),
                (OutboxStatus.PENDING, 3, NOW),  # not failed: left alone
            ],
        )

    def test_retry_when_no_ids_given_retries_every_failed_message(self):
        count = self.outbox.retry(None, NOW)

        self.assertEqual(count, 2)
        self.assertEqual(
            [self.state(row)[:2] for row in (self.first, self.second, self.pending)],
            [(OutboxStatus.PENDING, 0), (OutboxStatus.PENDING, 0), (OutboxStatus.PENDING, 3)],
        )


class TestRecentAndPrune(OutboxRepositoryTestCase):
    def test_recent_when_limited_lists_the_newest_first(self):
        rows = [self.message(f"{n}@x.example") for n in range(3)]

        self.assertEqual(self.ids(self.outbox.recent(None, 2)), self.ids([rows[2], rows[1]]))

    def test_recent_when_status_given_lists_only_that_status(self):
        failed = self.message("failed@x.example", status=OutboxStatus.FAILED)
        self.message("pending@x.example")

        self.assertEqual(self.ids(self.outbox.recent(OutboxStatus.FAILED, 10)), [failed.id])

    def test_prune_when_finished_before_the_cutoff_deletes_only_those(self):
        before = NOW - SECOND
        self.message("sent@x.example", status=OutboxStatus.SENT, sent_at=before)
        self.message("skipped@x.example", status=OutboxStatus.SKIPPED, sent_at=before)
        at_cutoff = self.message("cutoff@x.example", status=OutboxStatus.SENT, sent_at=NOW)
        failed = self.message("failed@x.example", status=OutboxStatus.FAILED, sent_at=before)
        pending = self.message("pending@x.example", next_attempt_at=before - LEASE)

        count = self.outbox.prune_sent(NOW)

        self.assertEqual(count, 2)
        remaining = self.outbox.session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id))
        self.assertEqual(list(remaining), self.ids([at_cutoff, failed, pending]))
