"""A password-reset request does the same work for a known and an unknown address,
so its timing cannot tell whether an account exists: no SMTP in the request, the
same SQL statements, one audit line. The mail worker does the rest later."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from myapp.extensions import db
from myapp.outbox.models import OutboxMessage, OutboxStatus
from myapp.outbox.service import MailWorker

RESET = "/api/v1/auth/password-reset"


@pytest.fixture
def production_like(app):
    """As in production: the request only queues; a worker delivers."""
    app.config["MAIL_EAGER"] = False
    yield
    app.config["MAIL_EAGER"] = True


# The test isolation turns the app's BEGIN/COMMIT into savepoints, opened lazily:
# they say nothing about the request's own work.
ISOLATION = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def statement_kinds(statements: list[str]) -> list[str]:
    """INSERT INTO email_outbox, SELECT ...: the kind and target of each statement."""
    return [
        " ".join(statement.split()[:3])
        for statement in statements
        if not statement.startswith(ISOLATION)
    ]


def request_reset(client, sql_statements, caplog, email: str):
    caplog.clear()
    sql_statements.clear()
    response = client.post(RESET, json={"email": email})
    audit = [r for r in caplog.records if r.name == "myapp.audit"]
    return response, statement_kinds(sql_statements), audit


class TestSameWorkEitherWay:
    def test_request_when_address_known_or_unknown_does_the_same_work(
        self, client, user, outbox, sql_statements, caplog, production_like
    ):
        caplog.set_level(logging.INFO, logger="myapp.audit")

        known = request_reset(client, sql_statements, caplog, user.email)
        unknown = request_reset(client, sql_statements, caplog, "nobody@example.com")

        (known_response, known_sql, known_audit) = known
        (unknown_response, unknown_sql, unknown_audit) = unknown
        assert known_response.status_code == unknown_response.status_code == 202
        assert known_response.get_json() == unknown_response.get_json()
        assert known_sql == unknown_sql
        assert any(kind.startswith("INSERT INTO email_outbox") for kind in known_sql)
        assert not any("users" in kind or "action_tokens" in kind for kind in known_sql)
        assert [r.getMessage() for r in known_audit] == ["password.reset_requested"]
        assert [r.getMessage() for r in unknown_audit] == ["password.reset_requested"]
        assert outbox == []  # nothing was sent from the request

    def test_worker_when_delivering_writes_the_link_for_a_known_address_only(
        self, client, user, outbox, production_like
    ):
        client.post(RESET, json={"email": user.email})
        client.post(RESET, json={"email": "nobody@example.com"})

        delivery = MailWorker.from_app().deliver_due()

        rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert (delivery.sent, delivery.skipped) == (1, 1)
        assert [(row.recipient, row.status) for row in rows] == [
            (user.email, OutboxStatus.SENT),
            ("nobody@example.com", OutboxStatus.SKIPPED),
        ]
        (message,) = outbox
        assert message.to == user.email
        assert "/account/reset?token=" in message.body
        assert rows[0].subject == "Reset your password"  # written once, kept for retries
