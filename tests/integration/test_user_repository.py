"""UserRepository against the real database (unittest style, rollback-isolated)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from unittest import mock

from freezegun import freeze_time
from sqlalchemy import delete, func, select

from myapp.auth.models import AuthSession
from myapp.database.reads import first_row, read_rows
from myapp.extensions import db
from myapp.users.models import RowCount, User
from myapp.users.repository import (
    MAX_ID,
    SKIP_OVER_INDEX_FROM,
    DuplicateUserError,
    UserRepository,
    UserSearch,
)
from tests.factories import UserFactory
from tests.support.testcase import DatabaseTestCase


class UserRepositoryTestCase(DatabaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.repo = UserRepository()
        self.ada = UserFactory(email="ada@example.com", username="ada")

    def count(self) -> int:
        return self.repo.session.scalar(select(func.count()).select_from(User))


class TestGet(UserRepositoryTestCase):
    def test_get_when_id_exists_returns_user(self):
        self.assertEqual(self.repo.get(self.ada.id).email, "ada@example.com")

    def test_get_when_id_is_the_largest_possible_returns_that_user(self):
        last = UserFactory(id=MAX_ID)

        self.assertEqual(self.repo.get(MAX_ID), last)

    def test_get_when_id_out_of_integer_range_returns_none_without_querying(self):
        with mock.patch.object(self.repo.session, "get") as get:
            for user_id in (0, -1, MAX_ID + 1, 10**20):
                with self.subTest(user_id=user_id):
                    self.assertIsNone(self.repo.get(user_id))

        get.assert_not_called()

    def test_get_by_email_when_stored_returns_user(self):
        self.assertEqual(self.repo.get_by_email("ada@example.com").id, self.ada.id)

    def test_get_by_email_when_unknown_returns_none(self):
        self.assertIsNone(self.repo.get_by_email("nobody@example.com"))

    def test_get_by_username_when_stored_returns_user(self):
        self.assertEqual(self.repo.get_by_username("ada").id, self.ada.id)


class TestFindForLogin(UserRepositoryTestCase):
    def test_find_for_login_by_email_or_username_returns_the_loaded_user(self):
        for key, value in (("email", "ada@example.com"), ("username", "ada")):
            with self.subTest(key=key):
                self.assertIs(self.repo.find_for_login(**{key: value}), self.ada)

    def test_find_for_login_when_unknown_returns_none(self):
        for key, value in (("email", "nobody@example.com"), ("username", "nobody")):
            with self.subTest(key=key):
                self.assertIsNone(self.repo.find_for_login(**{key: value}))

    def test_find_for_login_when_not_loaded_yet_attaches_a_user_that_saves(self):
        ada_id = self.ada.id
        self.repo.session.expunge_all()  # as at the start of a request

        found = self.repo.find_for_login(email="ada@example.com")
        found.username = "ada2"
        self.repo.save(found)

        self.assertIn(found, self.repo.session)
        self.repo.session.expunge_all()
        self.assertEqual(self.repo.get(ada_id).username, "ada2")


class TestFindConflicts(UserRepositoryTestCase):
    def test_find_conflicts_when_nothing_matches_returns_false_false(self):
        self.assertEqual(self.repo.find_conflicts("new@example.com", "new"), (False, False))

    def test_find_conflicts_when_email_matches_reports_email(self):
        self.assertEqual(self.repo.find_conflicts("ada@example.com", "new"), (True, False))

    def test_find_conflicts_when_username_matches_reports_username(self):
        self.assertEqual(self.repo.find_conflicts("new@example.com", "ada"), (False, True))

    def test_find_conflicts_when_both_match_different_users_reports_both(self):
        UserFactory(email="bob@example.com", username="bob")

        self.assertEqual(self.repo.find_conflicts("ada@example.com", "bob"), (True, True))


class TestFindConflictsExcludingSelf(UserRepositoryTestCase):
    def test_find_conflicts_when_user_keeps_own_values_reports_none(self):
        self.assertEqual(
            self.repo.find_conflicts("ada@example.com", "ada", exclude_id=self.ada.id),
            (False, False),
        )

    def test_find_conflicts_when_only_one_value_given_checks_only_it(self):
        self.assertEqual(self.repo.find_conflicts(None, "ada"), (False, True))
        self.assertEqual(self.repo.find_conflicts(None, None), (False, False))


class TestSearch(UserRepositoryTestCase):
    def setUp(self) -> None:
        super().setUp()
        with freeze_time("2026-01-01") as clock:
            for name in ("carol", "bob_x", "dave"):
                clock.tick(60)
                UserFactory(email=f"{name}@example.org", username=name)
        UserFactory(email="eve@example.org", username="eve", is_active=False, is_admin=True)

    def emails(self, **criteria) -> list[str]:
        users, _ = self.repo.search(UserSearch(**criteria))
        return [user.email for user in users]

    def test_search_when_no_criteria_returns_oldest_first_with_total(self):
        users, total = self.repo.search(UserSearch(per_page=2))

        self.assertEqual(total, 5)
        self.assertEqual([u.username for u in users], ["carol", "bob_x"])

    def test_search_when_page_two_continues_without_overlap(self):
        first = self.emails(per_page=2, page=1, sort="email")
        second = self.emails(per_page=2, page=2, sort="email")
        third = self.emails(per_page=2, page=3, sort="email")

        self.assertEqual(first + second + third, sorted(first + second + third))
        self.assertEqual(len(set(first + second + third)), 5)

    def test_search_when_sorted_descending_reverses_order(self):
        self.assertEqual(self.emails(sort="-username")[:2], ["eve@example.org", "dave@example.org"])

    def test_search_when_q_given_matches_substring_case_insensitively(self):
        self.assertEqual(self.emails(q="CAROL"), ["carol@example.org"])
        self.assertEqual(
            sorted(self.emails(q="example.org")),
            sorted(
                ["carol@example.org", "bob_x@example.org", "dave@example.org", "eve@example.org"]
            ),
        )

    def test_search_when_q_has_like_wildcards_matches_them_literally(self):
        self.assertEqual(self.emails(q="_"), ["bob_x@example.org"])
        self.assertEqual(self.emails(q="%"), [])
        # Rows written around the schema (a bulk load) may hold any character.
        UserFactory(email="100%real@example.net", username="percent")
        UserFactory(email="back\\slash@example.net", username="backslash")
        self.assertEqual(self.emails(q="%"), ["100%real@example.net"])
        self.assertEqual(self.emails(q="\\"), ["back\\slash@example.net"])

    def test_search_when_q_in_username_only_matches_it_literally(self):
        UserFactory(email="grace@example.net", username="g_hopper")
        UserFactory(email="gxh@example.net", username="gxhopper")

        self.assertEqual(
            self.emails(q="HOPPER", sort="email"), ["grace@example.net", "gxh@example.net"]
        )
        self.assertEqual(self.emails(q="g_h"), ["grace@example.net"])

    def test_search_when_counter_row_lost_counts_the_users(self):
        # The triggers' row deleted by hand: the total is counted, never taken as 0.
        self.repo.session.execute(delete(RowCount))

        users, total = self.repo.search(UserSearch(per_page=2))

        self.assertEqual(total, 5)
        self.assertEqual([u.username for u in users], ["carol", "bob_x"])

    def test_search_when_flags_given_filters_on_them(self):
        self.assertEqual(self.emails(is_active=False), ["eve@example.org"])
        self.assertEqual(self.emails(is_admin=True), ["eve@example.org"])
        self.assertEqual(len(self.emails(is_verified=False)), 5)

    def test_search_when_paged_in_any_sort_matches_the_full_listing(self):
        # Deep pages are read from the other end, and past SKIP_OVER_INDEX_FROM rows
        # through the ids first (repository.search): every page of every sort must
        # still be the matching slice of the one-page listing, either way.
        for skip_over_index_from in (0, SKIP_OVER_INDEX_FROM):
            with mock.patch("myapp.users.repository.SKIP_OVER_INDEX_FROM", skip_over_index_from):
                for sort in (
                    "created_at",
                    "-created_at",
                    "email",
                    "-email",
                    "username",
                    "-username",
                ):
                    full = self.emails(sort=sort, per_page=100)
                    for per_page in (1, 2, 3, 4):
                        with self.subTest(skip=skip_over_index_from, sort=sort, per_page=per_page):
                            pages = [
                                self.emails(sort=sort, per_page=per_page, page=page)
                                for page in range(1, -(-len(full) // per_page) + 1)
                            ]
                            self.assertEqual(
                                pages,
                                [full[i : i + per_page] for i in range(0, len(full), per_page)],
                            )

    def test_search_when_filtered_deep_page_counts_from_the_filtered_end(self):
        users, total = self.repo.search(UserSearch(q="example.org", per_page=3, page=2))

        self.assertEqual(total, 4)
        self.assertEqual([u.username for u in users], ["eve"])

    def test_search_when_page_past_end_returns_no_rows_but_total(self):
        users, total = self.repo.search(UserSearch(page=99))

        self.assertEqual((users, total), ([], 5))


class TestSearchReads(UserRepositoryTestCase):
    """What a page costs the database: the bounds repository.search promises."""

    def setUp(self) -> None:
        super().setUp()
        UserFactory.create_batch(9)  # ten users

    def reads(self, **criteria) -> list[str]:
        """The SQL, values inlined, of each read one search makes."""
        sql: list[str] = []
        inline = {"dialect": db.engine.dialect, "compile_kwargs": {"literal_binds": True}}

        def recording(read):
            def recorded(statement, parameters):
                sql.append(str(statement.compile(**inline)))
                return read(statement, parameters)

            return recorded

        with (
            mock.patch("myapp.users.repository.first_row", recording(first_row)),
            mock.patch("myapp.users.repository.read_rows", recording(read_rows)),
        ):
            self.repo.search(UserSearch(**criteria))
        return sql

    def test_reads_when_page_past_end_is_the_count_alone(self):
        self.assertEqual(len(self.reads(per_page=5, page=2)), 2)  # the total, the page
        self.assertEqual(len(self.reads(per_page=5, page=3)), 1)

    def test_reads_when_any_page_skip_at_most_half_the_rows(self):
        for page in range(1, 11):
            with self.subTest(page=page):
                _count, page_read = self.reads(per_page=1, page=page)
                skipped = sum(int(n) for n in re.findall(r"OFFSET (\d+)", page_read))

                self.assertLessEqual(skipped, 5)

    def test_reads_when_page_starts_at_threshold_skip_over_ids_first(self):
        with mock.patch("myapp.users.repository.SKIP_OVER_INDEX_FROM", 3):
            _, shallow = self.reads(per_page=1, page=3)  # skips 2 rows
            _, deep = self.reads(per_page=1, page=4)  # skips 3 rows

        self.assertNotIn("JOIN", shallow)
        self.assertIn("JOIN (SELECT users.id", deep)


class TestDelete(UserRepositoryTestCase):
    def test_delete_when_user_has_sessions_removes_user_and_sessions(self):
        self.repo.session.add(
            AuthSession(
                user_id=self.ada.id, refresh_jti="j", expires_at=datetime(2030, 1, 1, tzinfo=UTC)
            )
        )
        self.repo.session.commit()

        self.repo.delete(self.ada)

        self.assertEqual(self.count(), 0)
        self.assertEqual(self.repo.session.scalar(select(func.count(AuthSession.id))), 0)


class TestAdd(UserRepositoryTestCase):
    def test_add_when_new_commits_row_with_defaults(self):
        user = self.repo.add(User(email="new@example.com", username="new", password_hash="h"))

        self.repo.session.expire_all()
        stored = self.repo.get(user.id)
        self.assertEqual(
            (stored.is_active, stored.is_admin, stored.token_version), (True, False, 0)
        )
        self.assertEqual(self.count(), 2)

    def test_add_when_email_duplicate_raises_and_session_stays_usable(self):
        with self.assertRaises(DuplicateUserError):
            self.repo.add(User(email="ada@example.com", username="other", password_hash="h"))

        # The failed insert was rolled back; earlier rows and the session survive.
        self.assertEqual(self.count(), 1)
        self.assertEqual(self.repo.get(self.ada.id).username, "ada")

    def test_add_when_username_duplicate_raises(self):
        with self.assertRaises(DuplicateUserError):
            self.repo.add(User(email="other@example.com", username="ada", password_hash="h"))

        self.assertEqual(self.count(), 1)


class TestSave(UserRepositoryTestCase):
    def test_save_when_field_changed_persists_it(self):
        self.ada.is_active = False

        self.repo.save(self.ada)

        self.repo.session.expire_all()
        self.assertFalse(self.repo.get(self.ada.id).is_active)
