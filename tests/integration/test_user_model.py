"""The User model's column behaviour on the real database (unittest style)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from freezegun import freeze_time
from sqlalchemy.exc import StatementError

from myapp.extensions import db
from myapp.users.models import User
from tests.factories import UserFactory
from tests.support.testcase import DatabaseTestCase

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class TestTimestamps(DatabaseTestCase):
    def reload(self, user: User) -> User:
        db.session.expire_all()
        return db.session.get(User, user.id)

    def test_created_at_when_inserted_is_aware_utc_now(self):
        with freeze_time(T0):
            user = UserFactory()

        stored = self.reload(user)
        self.assertEqual(stored.created_at, T0)
        self.assertEqual(stored.created_at.utcoffset(), timedelta(0))
        self.assertEqual(stored.updated_at, T0)

    def test_created_at_when_rows_inserted_at_different_times_is_per_row(self):
        with freeze_time(T0) as clock:
            first = UserFactory()
            clock.tick(timedelta(seconds=5))
            second = UserFactory()

        self.assertEqual(
            self.reload(second).created_at - self.reload(first).created_at, timedelta(seconds=5)
        )

    def test_updated_at_when_row_changes_moves_and_created_at_stays(self):
        with freeze_time(T0) as clock:
            user = UserFactory()
            clock.tick(timedelta(minutes=1))
            user.is_admin = True
            db.session.commit()

        stored = self.reload(user)
        self.assertEqual(stored.created_at, T0)
        self.assertEqual(stored.updated_at, T0 + timedelta(minutes=1))

    def test_timestamp_when_given_other_timezone_is_stored_as_utc(self):
        local = datetime(2026, 1, 2, 7, 4, 5, tzinfo=timezone(timedelta(hours=2)))

        user = UserFactory(created_at=local)

        self.assertEqual(self.reload(user).created_at, datetime(2026, 1, 2, 5, 4, 5, tzinfo=UTC))

    def test_timestamp_when_naive_is_refused(self):
        with self.assertRaises(StatementError) as caught:
            UserFactory(created_at=datetime(2026, 1, 2))

        # The developer who passed it reads what is wrong and what to pass instead.
        self.assertIn(
            "naive datetime given to a UTC column; use an aware value", str(caught.exception)
        )
        db.session.rollback()


class TestRepr(DatabaseTestCase):
    def test_repr_when_called_never_shows_hash(self):
        user = UserFactory(username="ada")

        self.assertEqual(repr(user), f"<User id={user.id} username='ada'>")
        self.assertNotIn(user.password_hash, repr(user))
