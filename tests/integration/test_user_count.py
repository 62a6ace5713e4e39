"""The users' count that triggers keep (myapp.users.counting): exact after every
kind of write, and what the admin list reports as its unfiltered total."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, insert, select, text

from myapp.users.models import RowCount, User
from myapp.users.repository import UserRepository, UserSearch
from tests.factories import UserFactory
from tests.support.database import database_url_for_tests

# SQLite has no TRUNCATE (nor statement triggers): nothing to test there.
postgresql_only = pytest.mark.skipif(
    database_url_for_tests().get_backend_name() != "postgresql",
    reason="TRUNCATE is PostgreSQL's; the PostgreSQL environment (CI) runs it",
)


def kept(session) -> int:
    return session.scalar(select(RowCount.total).where(RowCount.name == "users"))


def counted(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


class TestUserCount:
    def test_count_when_users_added_one_by_one_follows(self, session):
        before = kept(session)

        UserFactory.create_batch(3)

        assert kept(session) == before + 3 == counted(session)

    def test_count_when_many_inserted_in_one_statement_follows(self, session):
        before = kept(session)
        rows = [
            {"email": f"bulk{n}@example.com", "username": f"bulk{n}", "password_hash": "x"}
            for n in range(25)
        ]

        session.execute(insert(User), rows)

        assert kept(session) == before + 25 == counted(session)

    def test_count_when_users_deleted_follows(self, session):
        users = UserFactory.create_batch(4)
        before = kept(session)

        UserRepository().delete(users[0])
        session.execute(delete(User).where(User.id.in_([users[1].id, users[2].id])))

        assert kept(session) == before - 3 == counted(session)

    def test_count_when_user_updated_stays(self, session, user):
        before = kept(session)

        user.username = "renamed"
        UserRepository().save(user)

        assert kept(session) == before

    @postgresql_only
    def test_count_when_table_truncated_is_zero(self, session):
        UserFactory.create_batch(2)

        session.execute(text("TRUNCATE users CASCADE"))

        assert kept(session) == 0 == counted(session)


class TestListTotal:
    def test_search_when_unfiltered_reports_the_kept_count(self, session):
        UserFactory.create_batch(3)
        session.execute(
            RowCount.__table__.update().where(RowCount.name == "users").values(total=1000)
        )

        _, total = UserRepository().search(UserSearch())

        assert total == 1000  # read from row_counts, not counted (the value proves it)

    def test_search_when_filtered_counts_the_matches(self, session):
        UserFactory.create_batch(2, is_admin=True)
        UserFactory.create_batch(3)

        _, total = UserRepository().search(UserSearch(is_admin=True))

        assert total == session.scalar(
            select(func.count()).select_from(User).where(User.is_admin.is_(True))
        )
