"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from bench.common import free_port

__all__ = ["Inbox", "free_port", "smtp_server"]


class Inbox:
    """aiosmtpd handler that keeps what it receives; ``delay`` seconds per message
    make a slow server (for tests that must catch a worker mid-batch)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.envelopes: list[Any] = []
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.delay:
            await asyncio.sleep(self.delay)
        self.envelopes.append(envelope)
        return "250 OK"

    @property
    def recipients(self) -> list[str]:
        return [to for envelope in self.envelopes for to in envelope.rcpt_tos]

    def messages(self) -> list[Message]:
        return [message_from_bytes(envelope.content) for envelope in self.envelopes]


@contextmanager
def smtp_server(
    port: int | None = None, delay: float = 0.0, **options: Any
) -> Iterator[tuple[Controller, Inbox]]:
    """A live SMTP server on ``port`` (a free one by default), stopped afterwards."""
    inbox = Inbox(delay)
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **options)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()
