"""Project CLI commands, registered on the app by ``register_commands``."""

from __future__ import annotations

import click
from flask import Flask

from myapp.auth.repository import ActionTokenRepository, SessionRepository
from myapp.database import utcnow


@click.command("prune-tokens")
def prune_tokens() -> None:
    """Delete expired sessions (with their revoked refresh tokens) and expired
    reset/verification tokens. Safe to run at any time, e.g. from cron."""
    now = utcnow()
    sessions = SessionRepository().prune(now)
    tokens = ActionTokenRepository().prune(now)
    click.echo(f"Deleted {sessions} expired session(s) and {tokens} expired email token(s).")


def register(app: Flask) -> None:
    app.cli.add_command(prune_tokens)
