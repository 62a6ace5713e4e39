"""flask create-admin and flask seed-users, through Flask's CLI runner."""

from __future__ import annotations

import argon2
import pytest
from sqlalchemy import func, select, text

from myapp.auth.account import AccountService
from myapp.database.unit_of_work import UnitOfWork
from myapp.extensions import db, passwords
from myapp.outbox.compose import compose
from myapp.outbox.models import OutboxMessage, OutboxStatus
from myapp.outbox.repository import OutboxRepository
from myapp.outbox.service import Outbox
from myapp.signing_keys import new_key_set, parse_key_set
from myapp.users.models import User
from tests.factories import UserFactory
from tests.support.committed import committed_app
from tests.support.database import variant_app

PASSWORD = "an admin passphrase"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args, input=None):
        return runner.invoke(args=list(args), input=input)

    return invoke


def create_admin(cli, *flags, email="root@example.com", username="root", input=None):
    return cli("create-admin", "--email", email, "--username", username, *flags, input=input)


def user_by_email(email: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


class TestCreateAdmin:
    def test_create_admin_when_password_prompted_twice_creates_verified_admin(self, cli):
        result = create_admin(cli, email="Root@Example.com", input=f"{PASSWORD}\n{PASSWORD}\n")

        admin = user_by_email("root@example.com")
        assert result.exit_code == 0, result.output
        assert "Created administrator root@example.com." in result.output
        assert PASSWORD not in result.output  # hidden input is not echoed
        assert (admin.is_admin, admin.is_verified, admin.username) == (True, True, "root")
        assert passwords.verify(admin.password_hash, PASSWORD)

    def test_create_admin_when_valid_goes_through_registration_and_sends_no_email(
        self, cli, outbox, mocker
    ):
        register = mocker.spy(AccountService, "register")

        result = create_admin(
            cli,
            "--password-stdin",
            email="Root@Example.com",
            username="Root",
            input=f"{PASSWORD}\n",
        )

        assert result.exit_code == 0, result.output
        register.assert_called_once_with(
            mocker.ANY,
            email="root@example.com",
            username="root",
            password=PASSWORD,
            is_admin=True,
            is_verified=True,
        )
        assert outbox == []  # the operator vouches for the address

    def test_create_admin_when_password_from_stdin_creates_admin(self, cli):
        result = create_admin(cli, "--password-stdin", input=f"{PASSWORD}\n")

        assert result.exit_code == 0, result.output
        assert user_by_email("root@example.com").is_admin

    def test_create_admin_when_confirmation_differs_asks_again(self, cli):
        result = create_admin(
            cli, input=f"{PASSWORD}\nsomething else entirely\n{PASSWORD}\n{PASSWORD}\n"
        )

        assert result.exit_code == 0, result.output
        assert "do not match" in result.output
        assert passwords.verify(user_by_email("root@example.com").password_hash, PASSWORD)

    @pytest.mark.parametrize(
        ("password", "reason"),
        [("short", "Length must be between"), ("LeaveMeAlone", "most commonly used")],
    )
    def test_create_admin_when_password_weak_refuses_and_creates_nothing(
        self, cli, password, reason
    ):
        result = create_admin(cli, "--password-stdin", input=f"{password}\n")

        assert result.exit_code == 2
        assert reason in result.output
        assert count_users() == 0

    @pytest.mark.parametrize(
        ("email", "username"), [("not-an-email", "root"), ("root@example.com", "no spaces")]
    )
    def test_create_admin_when_identity_invalid_refuses(self, cli, email, username):
        result = create_admin(
            cli, "--password-stdin", email=email, username=username, input=f"{PASSWORD}\n"
        )

        assert result.exit_code == 2
        assert count_users() == 0

    def test_create_admin_when_both_invalid_names_each_field_and_its_rule(self, cli):
        result = create_admin(
            cli, "--password-stdin", email="x", username="a b", input=f"{PASSWORD}\n"
        )

        assert result.exit_code == 2
        assert result.output.splitlines()[-1] == (
            "Error: email: Not a valid email address.; "
            "username: Must be 3-50 ASCII letters, digits, '_', '.' or '-'."
        )

    def test_create_admin_when_user_exists_without_promote_explains_and_changes_nothing(self, cli):
        UserFactory(email="root@example.com", username="root")

        result = create_admin(cli)

        assert result.exit_code == 1
        assert "--promote" in result.output
        assert user_by_email("root@example.com").is_admin is False

    def test_create_admin_when_verified_user_exists_with_promote_makes_it_admin(self, cli):
        UserFactory(email="root@example.com", username="root", is_verified=True)

        result = create_admin(cli, "--promote")

        assert result.exit_code == 0
        assert "Promoted root@example.com" in result.output
        assert user_by_email("root@example.com").is_admin is True

    def test_create_admin_when_already_admin_is_idempotent(self, cli):
        UserFactory(email="root@example.com", username="root", is_admin=True)

        result = create_admin(cli)

        assert result.exit_code == 0
        assert "already an administrator" in result.output
        assert count_users() == 1

    def test_create_admin_when_username_taken_by_other_refuses(self, cli):
        UserFactory(email="someone@example.com", username="root")

        result = create_admin(cli, "--password-stdin", input=f"{PASSWORD}\n")

        assert result.exit_code == 1
        assert "username root is taken" in result.output
        assert count_users() == 1


class TestCreateAdminPromoteGuards:
    """Anyone can register the address an operator means to promote first."""

    def test_promote_when_email_unverified_refuses_and_changes_nothing(self, cli):
        UserFactory(email="root@example.com", username="root", is_verified=False)

        result = create_admin(cli, "--promote")

        assert result.exit_code == 1
        assert "not verified" in result.output and "--force" in result.output
        assert user_by_email("root@example.com").is_admin is False

    def test_promote_when_unverified_but_forced_promotes(self, cli):
        UserFactory(email="root@example.com", username="root", is_verified=False)

        result = create_admin(cli, "--promote", "--force")

        assert result.exit_code == 0, result.output
        assert user_by_email("root@example.com").is_admin is True

    def test_promote_when_username_does_not_match_refuses_and_changes_nothing(self, cli):
        UserFactory(email="root@example.com", username="impostor", is_verified=True)

        result = create_admin(cli, "--promote", "--force", username="root")

        assert result.exit_code == 1
        assert "has the username impostor, not root" in result.output
        assert user_by_email("root@example.com").is_admin is False

    def test_promote_when_username_omitted_promotes_by_email_alone(self, cli):
        UserFactory(email="root@example.com", username="someone", is_verified=True)

        result = cli("create-admin", "--email", "root@example.com", "--promote")

        assert result.exit_code == 0, result.output
        assert user_by_email("root@example.com").is_admin is True

    def test_create_when_username_omitted_asks_for_it_and_creates_nothing(self, cli):
        result = cli("create-admin", "--email", "root@example.com", "--password-stdin")

        assert result.exit_code == 2
        assert "--username is required" in result.output
        assert count_users() == 0


class TestSeedUsers:
    def test_seed_users_when_fast_hash_inserts_count_unique_users_with_cheap_hashes(self, cli):
        result = cli("seed-users", "--count", "1500", "--fast-hash", "--password", PASSWORD)

        users = db.session.scalars(select(User)).all()
        assert result.exit_code == 0, result.output
        assert "Created 1500 users" in result.output
        assert len(users) == len({u.email for u in users}) == len({u.username for u in users})
        assert len(users) == 1500
        assert not any(u.is_admin for u in users)
        params = argon2.extract_parameters(users[0].password_hash)
        assert (params.time_cost, params.memory_cost) == (1, 8)
        assert passwords.verify(users[0].password_hash, PASSWORD)

    def test_seed_users_when_run_twice_never_collides(self, cli):
        cli("seed-users", "--count", "20", "--fast-hash", "--seed", "1")

        result = cli("seed-users", "--count", "20", "--fast-hash", "--seed", "1")

        assert result.exit_code == 0, result.output
        assert count_users() == 40

    def test_seed_users_without_fast_hash_uses_configured_parameters(self, app, cli):
        result = cli("seed-users", "--count", "3", "--password", PASSWORD)

        user = db.session.scalars(select(User)).first()
        params = argon2.extract_parameters(user.password_hash)
        assert result.exit_code == 0
        assert params.time_cost == app.config["ARGON2_TIME_COST"]
        assert params.memory_cost == app.config["ARGON2_MEMORY_COST"]

    def test_seed_users_on_a_database_of_its_own_leaves_the_table_ready_to_query(self):
        # Not the suite's transaction: VACUUM runs only outside one, as in production.
        with committed_app("seed") as app, app.app_context():
            result = app.test_cli_runner().invoke(
                args=["seed-users", "--count", "40", "--fast-hash"]
            )

            assert result.exit_code == 0, result.output
            if db.engine.dialect.name == "postgresql":
                # The planner's row count (ANALYZE) and the visibility map (VACUUM).
                tuples, all_visible = db.session.execute(
                    text("SELECT reltuples, relallvisible FROM pg_class WHERE relname = 'users'")
                ).one()
                assert (tuples, all_visible > 0) == (40, True)
            else:
                stat = db.session.scalar(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'users'"))
                assert stat.split()[0] == "40"  # rows, as ANALYZE counted them

    def test_seed_users_when_count_invalid_refuses(self, cli):
        result = cli("seed-users", "--count", "0")

        assert result.exit_code == 2
        assert count_users() == 0


def queued(*recipients: str, status: OutboxStatus = OutboxStatus.PENDING) -> list[int]:
    """Rows in the outbox (queued without eager delivery), in ``status``."""
    with UnitOfWork():
        outbox = Outbox(OutboxRepository(), UnitOfWork())
        for to in recipients:
            outbox.queue(to, compose("Hello", ["Secret link: ?token=abc"]), kind="test")
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    rows = rows[len(rows) - len(recipients) :]  # the ones just queued
    for row in rows:
        row.status = status
    db.session.commit()
    return [row.id for row in rows]


class TestMailCommands:
    def test_mail_worker_once_when_messages_due_delivers_them_and_exits(self, cli, outbox):
        queued("a@x.example", "b@x.example")

        result = cli("mail-worker", "--once")

        assert result.exit_code == 0, result.output
        assert "Sent 2, retrying 0, failed 0." in result.output
        assert sorted(message.to for message in outbox) == ["a@x.example", "b@x.example"]

    def test_mail_outbox_list_when_filtered_shows_rows_without_bodies(self, cli):
        failed_id, *_ = queued("a@x.example", status=OutboxStatus.FAILED)
        queued("b@x.example")

        result = cli("mail-outbox", "list", "--status", "failed")

        assert result.exit_code == 0, result.output
        assert f"{failed_id}\tfailed\ttest\ta@x.example\tattempts=0" in result.output
        assert "b@x.example" not in result.output
        assert "token" not in result.output  # bodies may carry live links

    def test_mail_outbox_list_when_limited_shows_the_newest(self, cli):
        *_, newest = queued("a@x.example", "b@x.example")

        result = cli("mail-outbox", "list", "--limit", "1")

        assert result.exit_code == 0, result.output
        (line,) = result.output.splitlines()
        assert line.split("\t")[:5] == [str(newest), "pending", "test", "b@x.example", "attempts=0"]

    @pytest.mark.parametrize("how", ["by-id", "all-failed"])
    def test_mail_outbox_retry_when_failed_makes_them_due_again(self, cli, how):
        ids = queued("a@x.example", "b@x.example", status=OutboxStatus.FAILED)

        args = [str(ids[0])] if how == "by-id" else ["--all-failed"]
        result = cli("mail-outbox", "retry", *args)

        expected = 1 if how == "by-id" else 2
        db.session.expire_all()
        pending = db.session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
        ).all()
        assert result.exit_code == 0, result.output
        assert f"{expected} message(s) due again." in result.output
        assert sorted(pending) == ids[:expected]

    @pytest.mark.parametrize("args", [[], ["1", "--all-failed"]], ids=["neither", "both"])
    def test_mail_outbox_retry_when_target_unclear_refuses(self, cli, args):
        result = cli("mail-outbox", "retry", *args)

        assert result.exit_code == 2
        assert "Give message ids or --all-failed" in result.output


class TestKeys:
    def test_generate_when_no_file_named_prints_a_private_key_set(self, cli):
        result = cli("keys", "generate", "--algorithm", "RS256")

        assert result.exit_code == 0
        key_set = parse_key_set(result.output, "RS256")
        assert len(key_set.keys) == 1 and key_set.signer.retired_at is None

    def test_generate_when_file_named_writes_it_readable_by_its_owner_only(self, cli, tmp_path):
        path = tmp_path / "jwks.json"

        result = cli("keys", "generate", "--out", str(path))

        assert result.exit_code == 0
        assert f"MYAPP_JWT_PRIVATE_KEYS={path}" in result.output
        assert parse_key_set(path.read_text(), "EdDSA").signer.kid
        assert oct(path.stat().st_mode & 0o777) == "0o600"

    def test_generate_when_file_exists_refuses_and_keeps_it(self, cli, tmp_path):
        path = tmp_path / "jwks.json"
        path.write_text("keep me")

        result = cli("keys", "generate", "--out", str(path))

        assert result.exit_code != 0
        assert "exists: rotate it" in result.output
        assert path.read_text() == "keep me"

    @pytest.mark.parametrize("command", ["rotate", "prune"])
    def test_rotate_and_prune_when_tokens_are_hs256_say_there_is_nothing_to_manage(
        self, cli, command
    ):
        result = cli("keys", command)

        assert result.exit_code == 1
        assert result.output == "Error: JWT_ALGORITHM is HS256: there is no key set to manage\n"

    def test_rotate_when_keys_are_a_value_not_a_file_says_how_to_rotate(self, app, tmp_path):
        value = new_key_set("EdDSA").to_json()
        with variant_app(JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEYS=value) as signed:
            result = signed.test_cli_runner().invoke(args=["keys", "rotate"])

        assert result.exit_code == 1
        assert result.output == (
            "Error: JWT_PRIVATE_KEYS is a value, not a file: rotate by deploying a new value\n"
        )
