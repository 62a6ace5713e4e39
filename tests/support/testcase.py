"""A ``unittest.TestCase`` base with the suite's database isolation.

Runs under ``python -m unittest`` and under pytest alike.
"""

from __future__ import annotations

import unittest

from tests.support.database import get_test_app, isolated_test


class DatabaseTestCase(unittest.TestCase):
    """Each test runs in an app context, inside a transaction rolled back afterwards,
    with an empty email outbox."""

    def setUp(self) -> None:
        super().setUp()
        self.app = get_test_app()
        self.enterContext(self.app.app_context())
        self.enterContext(isolated_test(self.app))
        self.client = self.app.test_client()
