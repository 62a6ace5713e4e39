"""factory-boy factories. They commit, which under the test isolation only
releases a savepoint: rows survive an app-side rollback and vanish after the test."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from myapp.extensions import db, passwords
from myapp.users.models import User

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(SQLAlchemyModelFactory):
    class Meta:
        model = User
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731 - resolved per test
        sqlalchemy_session_persistence = "commit"

    class Params:
        password = DEFAULT_PASSWORD

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.Sequence(lambda n: f"user{n}")
    password_hash = factory.LazyAttribute(lambda o: passwords.hash(o.password))
    is_active = True
    is_admin = False


class AdminFactory(UserFactory):
    is_admin = True
