"""The audit trail: one structured log line per security event.

Each line names the event, the user (and acting admin), the request id and the
client IP. Never a password, token or hash, and never what someone typed as a
login name: people paste passwords into the email field.
"""

from __future__ import annotations

import logging

from myapp.observability import client_ip, current_request_id

logger = logging.getLogger("myapp.audit")


def audit(event: str, *, user_id: int | None = None, **details: object) -> None:
    logger.info(
        event,
        extra={
            "event": event,
            "user_id": user_id,
            "ip": client_ip(),
            "request_id": current_request_id(),
            **details,
        },
    )
