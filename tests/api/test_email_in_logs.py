"""Links in emails carry live tokens: the console backend shows them only in
development and testing, and production refuses a backend that sends no mail."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from myapp import config, create_app
from myapp.auth.models import ActionToken
from myapp.extensions import db
from tests.support.committed import USER


class StagingConfig(config.TestingConfig):
    """Any environment but development and testing (a staging server, say)."""

    NAME = "staging"
    EMAIL_BACKEND = "console"


@pytest.fixture
def staging_app(tmp_path):
    app = create_app(
        StagingConfig,
        overrides={"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'staging.db'}"},
        instance_path=str(tmp_path),
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


class TestConsoleBackend:
    def test_reset_mail_when_logged_outside_development_has_its_token_redacted(
        self, staging_app, caplog
    ):
        client = staging_app.test_client()
        client.post("/api/v1/auth/register", json=USER)
        caplog.set_level(logging.INFO, logger="myapp.mail")
        caplog.clear()

        response = client.post("/api/v1/auth/password-reset", json={"email": USER["email"]})

        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert response.status_code == 202
        assert "account/reset?token=[redacted]" in logged
        assert re.findall(r"token=([^\s&]+)", logged) == ["[redacted]"]
        with staging_app.app_context():  # a live token exists; only the log lacks it
            assert db.session.scalar(select(func.count()).select_from(ActionToken)) == 2

    def test_reset_mail_when_logged_in_development_shows_the_link(self, tmp_path, caplog):
        app = create_app(
            "development",
            overrides={
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'dev.db'}",
                # Cheap hashing: this test is about the log, not argon2.
                "ARGON2_TIME_COST": 1,
                "ARGON2_MEMORY_COST": 16,
            },
            instance_path=str(tmp_path),
        )
        with app.app_context():
            db.create_all()
        client = app.test_client()
        client.post("/api/v1/auth/register", json=USER)
        caplog.set_level(logging.INFO, logger="myapp.mail")
        caplog.clear()

        client.post("/api/v1/auth/password-reset", json={"email": USER["email"]})

        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert re.search(r"account/reset\?token=[\w-]{43,}", logged)
        with app.app_context():
            db.engine.dispose()
