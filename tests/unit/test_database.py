"""UTCDateTime, the column type behind every timestamp."""

from __future__ import annotations

import os
import time
import unittest
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.dialects import postgresql, sqlite

from myapp.database.columns import UTCDateTime

PLUS_TWO = timezone(timedelta(hours=2))


class TestUTCDateTime(unittest.TestCase):
    def setUp(self) -> None:
        self.type = UTCDateTime()
        # On a server whose clock is set far from UTC: what is stored and read must
        # not depend on it (a machine on UTC would hide a conversion to local time).
        self.addCleanup(self.set_server_time_zone, os.environ.get("TZ"))
        self.set_server_time_zone("JST-9")

    @staticmethod
    def set_server_time_zone(name: str | None) -> None:
        if name is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = name
        time.tzset()

    def test_bind_when_sqlite_stores_naive_utc(self):
        value = datetime(2026, 1, 1, 14, 0, tzinfo=PLUS_TWO)

        stored = self.type.process_bind_param(value, sqlite.dialect())

        self.assertEqual(stored, datetime(2026, 1, 1, 12, 0))

    def test_bind_when_postgresql_stores_aware_utc(self):
        value = datetime(2026, 1, 1, 14, 0, tzinfo=PLUS_TWO)

        stored = self.type.process_bind_param(value, postgresql.dialect())

        self.assertEqual((stored, stored.tzinfo), (datetime(2026, 1, 1, 12, 0, tzinfo=UTC), UTC))

    def test_bind_when_naive_raises_saying_what_to_pass(self):
        why = r"\Anaive datetime given to a UTC column; use an aware value\Z"
        with self.assertRaisesRegex(ValueError, why):
            self.type.process_bind_param(datetime(2026, 1, 1), sqlite.dialect())

    def test_result_when_naive_from_sqlite_returns_aware_utc(self):
        loaded = self.type.process_result_value(datetime(2026, 1, 1, 12), sqlite.dialect())

        self.assertEqual((loaded, loaded.tzinfo), (datetime(2026, 1, 1, 12, tzinfo=UTC), UTC))

    def test_result_when_aware_other_zone_returns_utc(self):
        value = datetime(2026, 1, 1, 14, 0, tzinfo=PLUS_TWO)

        loaded = self.type.process_result_value(value, postgresql.dialect())

        self.assertEqual((loaded, loaded.tzinfo), (datetime(2026, 1, 1, 12, tzinfo=UTC), UTC))

    def test_none_when_bound_or_loaded_stays_none(self):
        self.assertIsNone(self.type.process_bind_param(None, sqlite.dialect()))
        self.assertIsNone(self.type.process_result_value(None, sqlite.dialect()))
