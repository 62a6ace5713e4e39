"""Project CLI commands (``flask <command>``), registered by ``register_commands``.

Like routes, commands are thin: they read and validate input (through the API's
schemas), call one use case per transaction, and print. They never commit.
"""

from __future__ import annotations

import random
import secrets
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import argon2
import click
from cryptography.fernet import Fernet
from faker import Faker
from flask import Flask, current_app
from marshmallow import ValidationError

from myapp.auth.account import AccountService, UsernameTaken
from myapp.auth.mfa import MfaService
from myapp.auth.schemas import RegisterSchema
from myapp.database.columns import utcnow
from myapp.extensions import passwords
from myapp.outbox.models import OutboxStatus
from myapp.outbox.service import Delivery, MailWorker, OutboxAdmin
from myapp.signing_keys import ALGORITHMS as SIGNING_ALGORITHMS
from myapp.signing_keys import KeySet, KeySource, new_key_set, reload_current, write_key_set
from myapp.users.service import UserService

SEED_BATCH = 1000


@click.command("prune-tokens")
def prune_tokens() -> None:
    """Delete expired sessions (with their revoked refresh tokens), expired
    reset/verification tokens and login second steps. Safe to run at any time,
    e.g. from cron."""
    pruned = AccountService.from_app().prune_expired()
    sent = OutboxAdmin.from_app().prune_sent()
    click.echo(
        f"Deleted {pruned.sessions} expired session(s), {pruned.tokens} expired token(s) "
        f"and {sent} sent or skipped email(s) past MAIL_KEEP_SENT_DAYS."
    )


@click.command("mail-worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=None, help="Messages per claim.")
@click.option(
    "--poll", type=click.FloatRange(0.05, 60), default=1.0, help="Seconds between empty polls."
)
def mail_worker(once: bool, batch: int | None, poll: float) -> None:
    """Deliver the outbox's email until stopped (SIGTERM or Ctrl-C finish the message
    being sent, hand the rest of the claim back, and exit)."""
    worker = MailWorker.from_app()
    if once:
        total = Delivery()
        while (round_ := worker.deliver_due(batch)).claimed:
            total.sent += round_.sent
            total.retrying += round_.retrying
            total.failed += round_.failed
        click.echo(f"Sent {total.sent}, retrying {total.retrying}, failed {total.failed}.")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo("Mail worker started.")
    worker.run(stop, batch, poll)
    click.echo("Mail worker stopped.")


@click.group("mail-outbox")
def mail_outbox() -> None:
    """Look at and retry the outbox's email."""


@mail_outbox.command("list")
@click.option("--status", type=click.Choice([status.value for status in OutboxStatus]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50)
def mail_outbox_list(status: str | None, limit: int) -> None:
    """The newest messages (never their bodies: they may carry tokens)."""
    messages = OutboxAdmin.from_app().recent(OutboxStatus(status) if status else None, limit)
    for message in messages:
        error = f"  {message.last_error}" if message.last_error else ""
        click.echo(
            f"{message.id}\t{message.status}\t{message.kind}\t{message.recipient}\t"
            f"attempts={message.attempts}\t{message.created_at:%Y-%m-%d %H:%M:%S}{error}"
        )
    if not messages:
        click.echo("No messages.")


@mail_outbox.command("retry")
@click.argument("message_ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Retry every failed message.")
def mail_outbox_retry(message_ids: tuple[int, ...], all_failed: bool) -> None:
    """Make failed messages due again (by id, or --all-failed)."""
    if bool(message_ids) == all_failed:
        raise click.UsageError("Give message ids or --all-failed (one of the two).")
    count = OutboxAdmin.from_app().retry(None if all_failed else list(message_ids))
    click.echo(f"{count} message(s) due again.")


@click.command("create-admin")
@click.option("--email", required=True, help="Email address of the administrator.")
@click.option(
    "--username",
    help="Username of the administrator (required to create one; with --promote, "
    "the existing account's username must match).",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (first line) instead of prompting.",
)
@click.option("--promote", is_flag=True, help="Make an existing user with this email admin.")
@click.option(
    "--force",
    is_flag=True,
    help="With --promote: promote even though the account's email is not verified.",
)
def create_admin(
    email: str, username: str | None, password_stdin: bool, promote: bool, force: bool
) -> None:
    """Create an administrator (or, with --promote, promote an existing user).

    Goes through the API's registration (its schema and use case), so every rule
    on emails, usernames and passwords is the same.
    """
    fields = {"email": email} if username is None else {"email": email, "username": username}
    identity = _load(RegisterSchema(only=tuple(fields)), **fields)
    users = UserService.from_app()
    existing = users.find_by_email(identity["email"])
    if existing is not None:
        if existing.is_admin:
            click.echo(f"{existing.email} is already an administrator; nothing to do.")
            return
        if not promote:
            raise click.ClickException(
                f"A user with email {existing.email} exists and is not an administrator; "
                "run again with --promote to make it one."
            )
        if "username" in identity and identity["username"] != existing.username:
            raise click.ClickException(
                f"The account with email {existing.email} has the username "
                f"{existing.username}, not {identity['username']}: not promoted."
            )
        if not existing.is_verified and not force:
            # Anyone can register the address an operator means to promote: until
            # its owner has proven it, that account may be an impostor's.
            raise click.ClickException(
                f"The email {existing.email} of that account is not verified, so its "
                "owner may not be who you think: not promoted. Have the owner verify "
                "it, or run again with --force if you are sure."
            )
        users.promote(existing)
        click.echo(f"Promoted {existing.email} to administrator.")
        return
    if "username" not in identity:
        raise click.UsageError("--username is required to create an administrator.")

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    _load(RegisterSchema(only=("password",)), password=password)
    try:
        # The operator vouches for the address: verified, no verification email.
        AccountService.from_app().register(
            **identity, password=password, is_admin=True, is_verified=True
        )
    except UsernameTaken:
        raise click.ClickException(f"The username {identity['username']} is taken.") from None
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
    rng = random.Random(seed)  # noqa: S311 - fake data, repeatable by seed; not security
    fake = Faker()
    fake.seed_instance(seed)
    password = password or secrets.token_urlsafe(12)
    # Cheap parameters only on request: a real database must never get weak hashes
    # by accident. (Such hashes are upgraded at the user's next login.)
    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1) if fast_hash else None
    run = secrets.token_hex(3)  # keeps emails and usernames unique across runs
    now = utcnow()
    users = UserService.from_app()
    created = 0
    with click.progressbar(length=count, label="Seeding users") as bar:
        while created < count:
            rows: list[dict[str, Any]] = []
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
            users.insert_many(rows)  # one transaction per batch
            bar.update(len(rows))
            created += len(rows)
    users.after_bulk_load()
    click.echo(f"Created {count} users (password: {password}).")


def _load(schema: RegisterSchema, **values: str) -> dict[str, Any]:
    """``values`` validated and normalised by ``schema``; a usage error otherwise."""
    try:
        loaded: dict[str, Any] = schema.load(values)
    except ValidationError as error:
        messages = "; ".join(
            f"{field}: {' '.join(problems)}"
            for field, problems in error.normalized_messages().items()
        )
        raise click.UsageError(messages) from None
    return loaded


@click.command("generate-encryption-key")
def generate_encryption_key() -> None:
    """Print a new key for ENCRYPTION_KEY (a Fernet key)."""
    click.echo(Fernet.generate_key().decode())


@click.command("rotate-encryption-key")
def rotate_encryption_key() -> None:
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEY.

    Rotation: generate a key, put it first in ENCRYPTION_KEY (keep the old one
    after it), restart, run this, then drop the old key.
    """
    changed = MfaService.from_app().rotate_encryption_key()
    click.echo(f"Re-encrypted {changed} secret(s) with the newest key.")


@click.group("keys")
def keys() -> None:
    """The key set tokens are signed with (JWT_ALGORITHM EdDSA or RS256)."""


@keys.command("generate")
@click.option(
    "--algorithm", type=click.Choice(sorted(SIGNING_ALGORITHMS)), default="EdDSA", show_default=True
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it here (0600)."
)
def keys_generate(algorithm: str, out: Path | None) -> None:
    """Make a new key set of one key: print it, or write it to --out."""
    key_set = new_key_set(algorithm)
    if out is None:
        click.echo(key_set.to_json(), nl=False)
        return
    if out.exists():
        raise click.ClickException(f"{out} exists: rotate it (flask keys rotate) instead")
    write_key_set(out, key_set)
    click.echo(f"Wrote a {algorithm} key set to {out}; set MYAPP_JWT_PRIVATE_KEYS={out}.")


@keys.command("rotate")
def keys_rotate() -> None:
    """A new key signs from now on; the previous one still verifies until pruned.

    Every process reading the same file picks the new key up by itself, within a
    second.
    """
    path, key_set = _configured_key_set()
    rotated = key_set.rotated(utcnow())
    write_key_set(path, rotated)
    reload_current()
    click.echo(f"New signing key {rotated.signer.kid}; {len(rotated.keys)} key(s) in {path}.")


@keys.command("prune")
def keys_prune() -> None:
    """Remove retired keys once every token they signed has expired."""
    path, key_set = _configured_key_set()
    config = current_app.config
    lifetime = max(config["JWT_ACCESS_TOKEN_EXPIRES"], config["JWT_REFRESH_TOKEN_EXPIRES"])
    pruned = key_set.pruned(utcnow(), lifetime)
    write_key_set(path, pruned)
    reload_current()
    removed = len(key_set.keys) - len(pruned.keys)
    click.echo(f"Removed {removed} retired key(s); {len(pruned.keys)} left in {path}.")


def _configured_key_set() -> tuple[Path, KeySet]:
    config = current_app.config
    if config["JWT_ALGORITHM"] not in SIGNING_ALGORITHMS:
        raise click.ClickException("JWT_ALGORITHM is HS256: there is no key set to manage")
    source = KeySource(str(config["JWT_PRIVATE_KEYS"]), config["JWT_ALGORITHM"])
    if source.path is None:
        raise click.ClickException(
            "JWT_PRIVATE_KEYS is a value, not a file: rotate by deploying a new value"
        )
    return source.path, source.current()


def register(app: Flask) -> None:
    for command in (
        keys,
        prune_tokens,
        create_admin,
        seed_users,
        mail_worker,
        mail_outbox,
        generate_encryption_key,
        rotate_encryption_key,
    ):
        app.cli.add_command(command)
