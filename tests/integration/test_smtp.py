"""The SMTP backend against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import socket
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from myapp.mail import EmailDeliveryError, EmailMessage, EmailService, SMTPBackend

MESSAGE = EmailMessage("ada@example.com", "Reset your password", "Open https://x/?token=abc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
    # handled=False: let aiosmtpd answer 535 itself on failure.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    """A live SMTP server accepting AUTH PLAIN/LOGIN (without TLS, for the test)."""
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield controller, inbox
    controller.stop()


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
