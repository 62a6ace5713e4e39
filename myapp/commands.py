"""Project CLI commands, registered on the app by ``register_commands``."""

from __future__ import annotations

import click
from flask import Flask

from myapp.auth.repository import SessionRepository
from myapp.database import utcnow


@click.command("prune-tokens")
def prune_tokens() -> None:
    """Delete expired sessions (and with them their revoked refresh tokens)."""
    removed = SessionRepository().prune(utcnow())
    click.echo(f"Deleted {removed} expired session(s).")


def register(app: Flask) -> None:
    app.cli.add_command(prune_tokens)
