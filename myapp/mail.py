"""Sending email through a backend chosen by configuration.

``EMAIL_BACKEND``: ``console`` (logs the message; development default), ``smtp``
(``SMTP_*`` settings), ``memory`` (keeps an outbox list; tests). Callers use
``EmailService.send`` and handle ``EmailDeliveryError``.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage as MIMEMessage
from typing import Any, Protocol

from flask import Flask, current_app

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    body: str  # plain text, always
    html: str | None = None  # the same content as HTML, when there is one


class EmailDeliveryError(Exception):
    """The backend could not hand the message over."""


class EmailBackend(Protocol):
    def send(self, message: EmailMessage, sender: str) -> None: ...


# The secret part of a link in an email: ?token=... (reset, verification).
_TOKEN_IN_LINK = re.compile(r"([?&]token=)[^\s&]+")


class ConsoleBackend:
    """Writes the message to the log: development, where nothing should be sent.

    Links carry live tokens (a reset link is the account): they are shown only
    where ``show_tokens`` (development, testing), and redacted anywhere else, where
    logs travel further.
    """

    def __init__(self, *, show_tokens: bool = False) -> None:
        self.show_tokens = show_tokens

    def send(self, message: EmailMessage, sender: str) -> None:
        body = (
            message.body if self.show_tokens else _TOKEN_IN_LINK.sub(r"\1[redacted]", message.body)
        )
        logger.info("Email to %s from %s: %s\n%s", message.to, sender, message.subject, body)


class MemoryBackend:
    """Keeps messages in ``outbox``: tests read what would have been sent."""

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    def send(self, message: EmailMessage, sender: str) -> None:
        self.outbox.append(message)


@dataclass(frozen=True)
class SMTPBackend:
    host: str
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def send(self, message: EmailMessage, sender: str) -> None:
        mime = MIMEMessage()
        mime["From"], mime["To"], mime["Subject"] = sender, message.to, message.subject
        mime.set_content(message.body)
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html")
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if self.ssl:
            connection = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with connection as smtp:
            if self.starttls and not self.ssl:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mime)


class EmailService:
    def __init__(self, backend: EmailBackend, sender: str) -> None:
        self.backend = backend
        self.sender = sender

    def send(self, to: str, subject: str, body: str, html: str | None = None) -> None:
        try:
            self.backend.send(EmailMessage(to, subject, body, html), self.sender)
        except Exception as error:  # any backend failure is a delivery failure to callers
            raise EmailDeliveryError(f"Could not send email: {error}") from error


def backend_from_config(config: Mapping[str, Any]) -> EmailBackend:
    name = config["EMAIL_BACKEND"]
    if name == "console":
        return ConsoleBackend(show_tokens=config.get("CONFIG_NAME") in ("development", "testing"))
    if name == "memory":
        return MemoryBackend()
    if name == "smtp":
        return SMTPBackend(
            host=config["SMTP_HOST"],
            port=int(config["SMTP_PORT"]),
            starttls=bool(config["SMTP_STARTTLS"]),
            ssl=bool(config["SMTP_SSL"]),
            username=config["SMTP_USERNAME"],
            password=config["SMTP_PASSWORD"],
            timeout=float(config["SMTP_TIMEOUT"]),
        )
    raise ValueError(f"Unknown EMAIL_BACKEND {name!r}: use console, smtp or memory")


class Mail:
    """Flask extension holding each app's ``EmailService``."""

    def init_app(self, app: Flask) -> None:
        app.extensions["myapp.mail"] = EmailService(
            backend_from_config(app.config), app.config["EMAIL_SENDER"]
        )

    @property
    def service(self) -> EmailService:
        service: EmailService = current_app.extensions["myapp.mail"]
        return service

    @property
    def outbox(self) -> list[EmailMessage]:
        """The memory backend's outbox (tests)."""
        backend = self.service.backend
        if not isinstance(backend, MemoryBackend):
            raise RuntimeError("the outbox exists with EMAIL_BACKEND=memory only")
        return backend.outbox
