"""Project CLI commands (``flask <command>``), registered by ``register_commands``."""

from __future__ import annotations

import random
import secrets
import sys
from datetime import timedelta

import argon2
import click
from faker import Faker
from flask import Flask
from marshmallow import ValidationError
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from myapp.auth.repository import ActionTokenRepository, SessionRepository
from myapp.auth.schemas import RegisterSchema
from myapp.database import utcnow
from myapp.extensions import db, passwords
from myapp.users.models import User
from myapp.users.repository import UserRepository

SEED_BATCH = 1000


@click.command("prune-tokens")
def prune_tokens() -> None:
    """Delete expired sessions (with their revoked refresh tokens) and expired
    reset/verification tokens. Safe to run at any time, e.g. from cron."""
    now = utcnow()
    sessions = SessionRepository().prune(now)
    tokens = ActionTokenRepository().prune(now)
    click.echo(f"Deleted {sessions} expired session(s) and {tokens} expired email token(s).")


@click.command("create-admin")
@click.option("--email", required=True, help="Email address of the administrator.")
@click.option("--username", required=True, help="Username of the administrator.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (first line) instead of prompting.",
)
@click.option("--promote", is_flag=True, help="Make an existing user with this email admin.")
def create_admin(email: str, username: str, password_stdin: bool, promote: bool) -> None:
    """Create an administrator (or, with --promote, promote an existing user)."""
    users = UserRepository()
    # The same rules as the API's registration: format, length, common passwords.
    schema = RegisterSchema(only=("email", "username"))
    try:
        identity = schema.load({"email": email, "username": username})
    except ValidationError as error:
        raise click.UsageError(_messages(error)) from None
    existing = users.get_by_email(identity["email"])
    if existing is not None:
        if existing.is_admin:
            click.echo(f"{existing.email} is already an administrator; nothing to do.")
        elif promote:
            existing.is_admin = True
            users.save(existing)
            click.echo(f"Promoted {existing.email} to administrator.")
        else:
            raise click.ClickException(
                f"A user with email {existing.email} exists and is not an administrator; "
                "run again with --promote to make it one."
            )
        return
    if users.get_by_username(identity["username"]) is not None:
        raise click.ClickException(f"The username {identity['username']} is taken.")

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        RegisterSchema(only=("password",)).load({"password": password})
    except ValidationError as error:
        raise click.UsageError(_messages(error)) from None

    users.add(
        User(
            email=identity["email"],
            username=identity["username"],
            password_hash=passwords.hash(password),
            is_admin=True,
            is_verified=True,  # the operator vouches for the address
        )
    )
    click.echo(f"Created administrator {identity['email']}.")


@click.command("seed-users")
@click.option("--count", type=click.IntRange(1, 10_000_000), required=True)
@click.option(
    "--fast-hash",
    is_flag=True,
    help="Hash with the cheapest argon2 parameters (fast; for benchmarks and demos only).",
)
@click.option("--password", default=None, help="Password of every seeded user (default: random).")
@click.option("--seed", type=int, default=None, help="Random seed, for repeatable data.")
def seed_users(count: int, fast_hash: bool, password: str | None, seed: int | None) -> None:
    """Insert COUNT realistic fake users in bulk (not admins)."""
    rng = random.Random(seed)
    fake = Faker()
    fake.seed_instance(seed)
    password = password or secrets.token_urlsafe(12)
    # Cheap parameters only on request: a real database must never get weak hashes
    # by accident. (Such hashes are upgraded at the user's next login.)
    hasher = (
        argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1) if fast_hash else None
    )
    run = secrets.token_hex(3)  # keeps emails and usernames unique across runs
    now = utcnow()
    created = 0
    with click.progressbar(length=count, label="Seeding users") as bar:
        while created < count:
            rows = []
            for n in range(created, min(created + SEED_BATCH, count)):
                name = fake.user_name()[:30]
                username = f"{name}.{run}.{n}"
                joined = now - timedelta(seconds=rng.randrange(3 * 365 * 24 * 3600))
                rows.append(
                    {
                        "email": f"{username}@{fake.free_email_domain()}",
                        "username": username,
                        "password_hash": (
                            hasher.hash(password) if hasher else passwords.hash(password)
                        ),
                        "is_active": rng.random() < 0.95,
                        "is_admin": False,
                        "is_verified": rng.random() < 0.8,
                        "token_version": 0,
                        "created_at": joined,
                        "updated_at": joined,
                    }
                )
            db.session.execute(insert(User), rows)
            db.session.commit()
            bar.update(len(rows))
            created += len(rows)
    if db.session.get_bind().dialect.name == "postgresql":
        # After a bulk load: fresh planner statistics (else the planner estimates
        # from an empty table), and a visibility map, without which the list's
        # index-only scans fetch every row anyway (autovacuum would get there later).
        db.session.execute(text("ANALYZE users"))
        db.session.commit()
        if isinstance(db.engine, Engine):  # not when an outer transaction wraps the app
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM users"))  # cannot run inside a transaction
    click.echo(f"Created {count} users (password: {password}).")


def _messages(error: ValidationError) -> str:
    return "; ".join(
        f"{field}: {' '.join(messages)}" for field, messages in error.normalized_messages().items()
    )


def register(app: Flask) -> None:
    for command in (prune_tokens, create_admin, seed_users):
        app.cli.add_command(command)
