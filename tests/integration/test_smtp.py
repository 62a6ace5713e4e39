"""The SMTP backend against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import socket
from email import message_from_bytes

import pytest
from aiosmtpd.smtp import AuthResult

from myapp.mail import EmailDeliveryError, EmailMessage, EmailService, SMTPBackend
from tests.support.smtp import free_port, server_tls
from tests.support.smtp import smtp_server as live_smtp_server

MESSAGE = EmailMessage("ada@example.com", "Reset your password", "Open https://x/?token=abc")


def authenticator(server, session, envelope, mechanism, auth_data):
    # "open": a relay account without a password (the backend sends an empty one).
    ok = (auth_data.login, auth_data.password) in {(b"mailer", b"s3cret"), (b"open", b"")}
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

    def test_send_when_username_without_password_authenticates_with_an_empty_one(self, smtp_server):
        controller, inbox = smtp_server
        backend = SMTPBackend(
            host="127.0.0.1", port=controller.port, starttls=False, username="open"
        )

        backend.send(MESSAGE, "no-reply@example.com")

        assert inbox.recipients == ["ada@example.com"]

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


class TestTransportSecurity:
    """TLS to the relay, STARTTLS or implicit, verifies the relay's certificate: a
    reset link sent over TLS to whoever answers would be no safer than plaintext.
    The relay here has a self-signed certificate, trusted through SSL_CERT_FILE
    (what the default context reads) or not."""

    @pytest.fixture
    def certificate(self, tmp_path):
        return server_tls(tmp_path)

    @pytest.fixture(params=["starttls", "implicit"])
    def relay(self, request, certificate):
        """A relay speaking TLS the parametrized way, and the backend settings for it."""
        _, context = certificate
        if request.param == "starttls":
            server = live_smtp_server(tls_context=context, require_starttls=True)
            settings = {"starttls": True, "ssl": False}
        else:
            server = live_smtp_server(ssl_context=context)
            settings = {"starttls": False, "ssl": True}
        with server as (controller, inbox):
            yield SMTPBackend(host="127.0.0.1", port=controller.port, timeout=5, **settings), inbox

    def test_send_when_relay_certificate_trusted_delivers_over_tls(
        self, relay, certificate, monkeypatch
    ):
        backend, inbox = relay
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))

        backend.send(MESSAGE, "no-reply@example.com")

        assert inbox.recipients == ["ada@example.com"]

    def test_send_when_relay_certificate_untrusted_refuses_and_sends_nothing(self, relay):
        backend, inbox = relay

        with pytest.raises(EmailDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            EmailService(backend, "no-reply@example.com").send("a@example.com", "s", "b")
        assert inbox.envelopes == []


class TestSilentRelay:
    @pytest.mark.parametrize("implicit_tls", [False, True], ids=["plain", "implicit-tls"])
    def test_send_when_relay_accepts_but_never_answers_gives_up_after_the_timeout(
        self, implicit_tls
    ):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            backend = SMTPBackend(
                host="127.0.0.1", port=port, starttls=False, ssl=implicit_tls, timeout=0.2
            )

            with pytest.raises(EmailDeliveryError, match="timed out"):
                EmailService(backend, "no-reply@example.com").send("a@example.com", "s", "b")
