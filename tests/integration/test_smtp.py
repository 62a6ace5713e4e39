"""The SMTP backend against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

from email import message_from_bytes

import pytest
from aiosmtpd.smtp import AuthResult

from myapp.mail import EmailDeliveryError, EmailMessage, EmailService, SMTPBackend
from tests.support.smtp import free_port
from tests.support.smtp import smtp_server as live_smtp_server

MESSAGE = EmailMessage("ada@example.com", "Reset your password", "Open https://x/?token=abc")


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
    # handled=False: let aiosmtpd answer 535 itself on failure.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    """A live SMTP server accepting AUTH PLAIN/LOGIN (without TLS, for the test)."""
    with live_smtp_server(authenticator=authenticator, auth_require_tls=False) as server:
        yield server


class TestSMTPBackend:
    def test_send_when_server_up_delivers_message(self, smtp_server):
        controller, inbox = smtp_server
        backend = SMTPBackend(host="127.0.0.1", port=controller.port, starttls=False)

        EmailService(backend, "myapp <no-reply@example.com>").send(
            MESSAGE.to, MESSAGE.subject, MESSAGE.body
        )

        (envelope,) = inbox.envelopes
        parsed = message_from_bytes(envelope.content)
        assert envelope.rcpt_tos == ["ada@example.com"]
        assert parsed["Subject"] == "Reset your password"
        assert parsed["From"] == "myapp <no-reply@example.com>"
        assert "token=abc" in parsed.get_payload()

    def test_send_when_credentials_configured_authenticates(self, smtp_server):
        controller, inbox = smtp_server
        backend = SMTPBackend(
            host="127.0.0.1",
            port=controller.port,
            starttls=False,
            username="mailer",
            password="s3cret",
        )

        backend.send(MESSAGE, "no-reply@example.com")

        assert len(inbox.envelopes) == 1

    def test_send_when_credentials_wrong_raises_delivery_error(self, smtp_server):
        controller, inbox = smtp_server
        backend = SMTPBackend(
            host="127.0.0.1",
            port=controller.port,
            starttls=False,
            username="mailer",
            password="wrong",
        )

        with pytest.raises(EmailDeliveryError):
            EmailService(backend, "no-reply@example.com").send("a@example.com", "s", "b")
        assert inbox.envelopes == []

    def test_send_when_starttls_required_but_unsupported_refuses_plaintext(self, smtp_server):
        controller, inbox = smtp_server
        backend = SMTPBackend(host="127.0.0.1", port=controller.port, starttls=True)

        with pytest.raises(EmailDeliveryError):
            EmailService(backend, "no-reply@example.com").send("a@example.com", "s", "b")
        assert inbox.envelopes == []

    def test_send_when_server_down_raises_delivery_error(self):
        backend = SMTPBackend(host="127.0.0.1", port=free_port(), starttls=False, timeout=2)

        with pytest.raises(EmailDeliveryError):
            EmailService(backend, "no-reply@example.com").send("a@example.com", "s", "b")
