"""EmailService and backend selection, with the backend mocked."""

from __future__ import annotations

import unittest
from unittest import mock

from flask import Flask

from myapp.mail import (
    ConsoleBackend,
    EmailDeliveryError,
    EmailMessage,
    EmailService,
    Mail,
    MemoryBackend,
    SMTPBackend,
    backend_from_config,
)

SMTP_CONFIG = {
    "SMTP_HOST": "mail.example.com",
    "SMTP_PORT": "2525",
    "SMTP_STARTTLS": True,
    "SMTP_SSL": False,
    "SMTP_USERNAME": "u",
    "SMTP_PASSWORD": "p",
    "SMTP_TIMEOUT": 5,
}


class TestEmailService(unittest.TestCase):
    def setUp(self) -> None:
        self.backend = mock.Mock()
        self.service = EmailService(self.backend, "myapp <no-reply@example.com>")

    def test_send_when_called_hands_message_and_sender_to_backend(self):
        self.service.send("ada@example.com", "Hello", "Body")

        self.backend.send.assert_called_once_with(
            EmailMessage(to="ada@example.com", subject="Hello", body="Body"),
            "myapp <no-reply@example.com>",
        )

    def test_send_when_backend_fails_raises_delivery_error_with_cause(self):
        self.backend.send.side_effect = ConnectionRefusedError("nope")

        with self.assertRaises(EmailDeliveryError) as caught:
            self.service.send("ada@example.com", "Hello", "Body")

        self.assertIsInstance(caught.exception.__cause__, ConnectionRefusedError)


class TestBackends(unittest.TestCase):
    def test_backend_from_config_when_named_builds_that_backend(self):
        self.assertIsInstance(backend_from_config({"EMAIL_BACKEND": "console"}), ConsoleBackend)
        self.assertIsInstance(backend_from_config({"EMAIL_BACKEND": "memory"}), MemoryBackend)

    def test_backend_from_config_when_console_shows_tokens_only_off_production(self):
        # Links with live tokens in the log are a convenience locally, a leak in production.
        for config_name, shown in (
            ("development", True),
            ("testing", True),
            ("production", False),
            (None, False),
        ):
            with self.subTest(config_name=config_name):
                config = {"EMAIL_BACKEND": "console", "CONFIG_NAME": config_name}

                backend = backend_from_config(config)

                self.assertIsInstance(backend, ConsoleBackend)
                self.assertIs(backend.show_tokens, shown)

    def test_backend_from_config_when_smtp_reads_smtp_settings(self):
        for starttls, ssl in ((True, False), (False, True)):
            with self.subTest(starttls=starttls, ssl=ssl):
                config = {**SMTP_CONFIG, "SMTP_STARTTLS": starttls, "SMTP_SSL": ssl}

                backend = backend_from_config({"EMAIL_BACKEND": "smtp", **config})

                self.assertEqual(
                    backend,
                    SMTPBackend(
                        host="mail.example.com",
                        port=2525,
                        starttls=starttls,
                        ssl=ssl,
                        username="u",
                        password="p",
                        timeout=5.0,
                    ),
                )

    def test_backend_from_config_when_unknown_names_the_choices(self):
        with self.assertRaises(ValueError) as caught:
            backend_from_config({"EMAIL_BACKEND": "carrier-pigeon"})

        self.assertEqual(
            str(caught.exception),
            "Unknown EMAIL_BACKEND 'carrier-pigeon': use console, smtp or memory",
        )

    def test_console_backend_when_sending_logs_message(self):
        with self.assertLogs("myapp.mail", "INFO") as logs:
            ConsoleBackend().send(EmailMessage("ada@example.com", "Hi", "Link"), "me")

        (record,) = logs.records
        self.assertEqual(record.getMessage(), "Email to ada@example.com from me: Hi\nLink")

    def test_console_backend_when_not_told_to_show_tokens_redacts_them(self):
        body = "Open https://x.example/account/reset?token=abc.def&next=/ now."
        for backend, expected in (
            (ConsoleBackend(), "?token=[redacted]&next=/ now."),
            (ConsoleBackend(show_tokens=True), "?token=abc.def&next=/ now."),
        ):
            with self.subTest(show_tokens=backend.show_tokens):
                with self.assertLogs("myapp.mail", "INFO") as logs:
                    backend.send(EmailMessage("ada@example.com", "Reset", body), "me")

                self.assertTrue(logs.records[0].getMessage().endswith(expected))

    def test_memory_backend_when_sending_appends_to_outbox(self):
        backend = MemoryBackend()
        message = EmailMessage("ada@example.com", "Hi", "Link")

        backend.send(message, "me")

        self.assertEqual(backend.outbox, [message])


class TestMailExtension(unittest.TestCase):
    def test_init_app_when_memory_backend_exposes_service_and_outbox(self):
        app = Flask(__name__)
        app.config.update(EMAIL_BACKEND="memory", EMAIL_SENDER="me")
        mail = Mail()
        mail.init_app(app)

        with app.app_context():
            mail.service.send("ada@example.com", "Hi", "Body")

            self.assertEqual(mail.outbox, [EmailMessage("ada@example.com", "Hi", "Body")])
            self.assertEqual(mail.service.sender, "me")
