"""Refresh rotation with reuse detection, logout, logout-all and the session list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from freezegun import freeze_time
from sqlalchemy import select

from myapp.auth.models import ActionToken, AuthSession, WebAuthnChallenge
from myapp.extensions import db
from myapp.outbox.models import OutboxMessage
from tests.conftest import bearer
from tests.factories import DEFAULT_PASSWORD, UserFactory

REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"


def claims(app, token: str) -> dict:
    return pyjwt.decode(
        token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"], audience="myapp-api"
    )


def sessions_of(user) -> list[AuthSession]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuthSession).where(AuthSession.user_id == user.id)))


@pytest.fixture
def tokens(auth, user) -> dict:
    """A login's token pair for ``user``."""
    return auth.login(email=user.email).get_json()


class TestLoginSession:
    def test_login_when_successful_records_session_with_client_details(self, app, auth, user):
        body = auth.login(email=user.email).get_json()

        (row,) = sessions_of(user)
        assert claims(app, body["access_token"])["sid"] == row.id
        assert claims(app, body["refresh_token"])["jti"] == row.refresh_jti
        assert row.revoked_at is None
        assert row.ip == "127.0.0.1"


class TestRefresh:
    def test_refresh_when_token_current_returns_new_pair_and_spends_old(
        self, app, client, user, tokens
    ):
        response = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))

        body = response.get_json()
        (row,) = sessions_of(user)
        assert response.status_code == 200
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert body["refresh_token"] != tokens["refresh_token"]
        assert claims(app, body["refresh_token"])["jti"] == row.refresh_jti
        assert claims(app, body["access_token"])["fresh"] is False
        assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200

    def test_refresh_when_spent_token_reused_revokes_whole_family(self, client, user, tokens):
        rt1 = tokens["refresh_token"]
        rotated = client.post(REFRESH, headers=bearer(rt1)).get_json()

        reuse = client.post(REFRESH, headers=bearer(rt1))
        newest = client.post(REFRESH, headers=bearer(rotated["refresh_token"]))

        assert reuse.status_code == 401
        assert "reuse" in reuse.get_json()["detail"]
        assert newest.status_code == 401
        assert client.get(ME, headers=bearer(rotated["access_token"])).status_code == 401
        assert sessions_of(user)[0].revoked_at is not None

    def test_refresh_when_reuse_detected_leaves_other_sessions_alive(self, client, auth, user):
        stolen = auth.login(email=user.email).get_json()
        other = auth.login(email=user.email).get_json()
        client.post(REFRESH, headers=bearer(stolen["refresh_token"]))

        client.post(REFRESH, headers=bearer(stolen["refresh_token"]))

        assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200

    def test_refresh_when_access_token_sent_returns_401_and_spends_nothing(self, client, tokens):
        response = client.post(REFRESH, headers=bearer(tokens["access_token"]))

        assert response.status_code == 401
        assert response.get_json()["detail"] == "Invalid token."
        # The family is untouched: its refresh token still works.
        assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 200

    def test_refresh_when_session_expired_returns_401(self, app, client, auth, user):
        with freeze_time("2026-03-01 12:00:00") as clock:
            tokens = auth.login(email=user.email).get_json()
            clock.tick(app.config["JWT_REFRESH_TOKEN_EXPIRES"] + timedelta(seconds=1))

            response = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))

        assert response.status_code == 401
        assert response.get_json()["detail"] == "Token has expired."

    def test_refresh_when_rotated_extends_session_expiry(self, app, client, auth, user):
        with freeze_time("2026-03-01 12:00:00") as clock:
            tokens = auth.login(email=user.email).get_json()
            clock.tick(timedelta(days=1))

            client.post(REFRESH, headers=bearer(tokens["refresh_token"]))

        (row,) = sessions_of(user)
        lifetime = app.config["JWT_REFRESH_TOKEN_EXPIRES"]
        assert row.expires_at == row.created_at + timedelta(days=1) + lifetime
        assert row.last_used_at == row.created_at + timedelta(days=1)


class TestAbsoluteLifetime:
    """However often a session is refreshed, it ends SESSION_ABSOLUTE_LIFETIME after
    its login; the idle lifetime (JWT_REFRESH_TOKEN_EXPIRES) only ends it earlier."""

    def test_refresh_when_kept_busy_past_the_absolute_lifetime_returns_401(
        self, app, client, auth, user
    ):
        absolute = timedelta(seconds=app.config["SESSION_ABSOLUTE_LIFETIME"])
        idle = app.config["JWT_REFRESH_TOKEN_EXPIRES"]
        step = idle - timedelta(hours=1)  # always refreshed before it idles out
        login_at = datetime(2026, 3, 1, 12, tzinfo=UTC)
        with freeze_time(login_at) as clock:
            refresh = auth.login(email=user.email).get_json()["refresh_token"]
            for _ in range(absolute // step):  # 4 refreshes: days 7, 14, 21, 28 or so
                clock.tick(step)
                response = client.post(REFRESH, headers=bearer(refresh))
                assert response.status_code == 200, response.get_json()
                refresh = response.get_json()["refresh_token"]
            (row,) = sessions_of(user)
            deadline = login_at + absolute
            clock.move_to(deadline)

            response = client.post(REFRESH, headers=bearer(refresh))

        assert row.expires_at == deadline  # the last refresh extended it only this far
        assert response.status_code == 401
        assert response.get_json()["detail"] == "Token is no longer valid."

    def test_login_when_absolute_lifetime_shorter_than_idle_expires_at_absolute(
        self, app, client, auth, user
    ):
        app.config["SESSION_ABSOLUTE_LIFETIME"] = 3600
        try:
            auth.login(email=user.email)
        finally:
            app.config["SESSION_ABSOLUTE_LIFETIME"] = 30 * 24 * 3600

        (row,) = sessions_of(user)
        assert row.expires_at == row.created_at + timedelta(hours=1)

    def test_defaults_when_read_are_seven_days_idle_and_thirty_absolute(self, app):
        assert app.config["JWT_REFRESH_TOKEN_EXPIRES"] == timedelta(days=7)
        assert app.config["SESSION_ABSOLUTE_LIFETIME"] == 30 * 24 * 3600


class TestLogout:
    def test_logout_when_called_revokes_access_and_refresh_of_session(self, client, user, tokens):
        response = client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))

        assert response.status_code == 204
        assert response.get_data() == b""
        assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
        assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 401
        assert sessions_of(user)[0].revoked_at is not None

    def test_logout_when_called_keeps_other_sessions(self, client, auth, user):
        first = auth.login(email=user.email).get_json()
        second = auth.login(email=user.email).get_json()

        client.post("/api/v1/auth/logout", headers=bearer(first["access_token"]))

        assert client.get(ME, headers=bearer(second["access_token"])).status_code == 200

    # Not only from the first version: every sign-out everywhere must move it on.
    @pytest.mark.parametrize("earlier_sign_outs", [0, 3])
    def test_logout_all_when_called_revokes_every_session_and_bumps_version(
        self, client, auth, user, earlier_sign_outs
    ):
        user.token_version = earlier_sign_outs
        db.session.commit()
        first = auth.login(email=user.email).get_json()
        second = auth.login(email=user.email).get_json()
        version = user.token_version

        response = client.post("/api/v1/auth/logout-all", headers=bearer(first["access_token"]))

        assert response.status_code == 204
        for pair in (first, second):
            assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 401
            assert client.post(REFRESH, headers=bearer(pair["refresh_token"])).status_code == 401
        assert all(row.revoked_at is not None for row in sessions_of(user))
        db.session.refresh(user)
        assert user.token_version == version + 1

    def test_logout_all_when_followed_by_login_in_same_second_new_login_works(
        self, client, auth, user
    ):
        with freeze_time("2026-03-01 12:00:00"):
            old = auth.login(email=user.email).get_json()
            client.post("/api/v1/auth/logout-all", headers=bearer(old["access_token"]))

            new = auth.login(email=user.email).get_json()
            response = client.get(ME, headers=bearer(new["access_token"]))

        assert response.status_code == 200


class TestSessionList:
    def test_sessions_when_listed_show_live_sessions_of_user_only(self, client, auth, user):
        first = client.post(
            "/api/v1/auth/login",
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"User-Agent": "Phone/1.0"},
            environ_base={"REMOTE_ADDR": "198.51.100.7"},
        ).get_json()
        auth.login(email=user.email)
        auth.login(email=UserFactory().email)

        response = client.get("/api/v1/auth/sessions", headers=bearer(first["access_token"]))

        body = response.get_json()
        assert response.status_code == 200
        assert len(body) == 2
        assert set(body[0]) == {"id", "created_at", "last_used_at", "user_agent", "ip"}
        assert {"Phone/1.0"} <= {item["user_agent"] for item in body}
        assert {"198.51.100.7"} <= {item["ip"] for item in body}
        assert {item["id"] for item in body} == {row.id for row in sessions_of(user)}

    def test_sessions_when_one_logged_out_omits_it(self, client, auth, user):
        first = auth.login(email=user.email).get_json()
        second = auth.login(email=user.email).get_json()
        client.post("/api/v1/auth/logout", headers=bearer(first["access_token"]))
        response = client.get("/api/v1/auth/sessions", headers=bearer(second["access_token"]))

        body = response.get_json()

        assert [item["id"] for item in body] == [
            row.id for row in sessions_of(user) if row.revoked_at is None
        ]

    def test_delete_session_when_owned_revokes_it(self, app, client, auth, user):
        current = auth.login(email=user.email).get_json()
        other = auth.login(email=user.email).get_json()
        other_id = claims(app, other["access_token"])["sid"]

        response = client.delete(
            f"/api/v1/auth/sessions/{other_id}", headers=bearer(current["access_token"])
        )

        assert response.status_code == 204
        assert client.get(ME, headers=bearer(other["access_token"])).status_code == 401
        assert client.get(ME, headers=bearer(current["access_token"])).status_code == 200
        assert next(r for r in sessions_of(user) if r.id == other_id).revoked_at is not None

    @pytest.mark.parametrize("kind", ["other-user", "unknown", "not-a-uuid"])
    def test_delete_session_when_not_users_own_returns_404_and_revokes_nothing(
        self, client, auth, user, kind
    ):
        mine = auth.login(email=user.email).get_json()
        stranger = UserFactory()
        auth.login(email=stranger.email)
        session_id = {
            "other-user": sessions_of(stranger)[0].id,
            "unknown": str(uuid.uuid4()),
            "not-a-uuid": "12345",
        }[kind]

        response = client.delete(
            f"/api/v1/auth/sessions/{session_id}", headers=bearer(mine["access_token"])
        )

        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        if kind != "not-a-uuid":  # that one names no session: the router's own 404
            # The same words whether the session is another user's or none at all.
            assert response.get_json()["detail"] == "Session not found."
        assert sessions_of(stranger)[0].revoked_at is None


class TestPruneTokens:
    def test_prune_tokens_when_run_deletes_only_expired_sessions_and_email_tokens(
        self, app, client, auth, user
    ):
        with freeze_time("2026-01-01 00:00:00"):
            auth.login(email=user.email)
            client.post("/api/v1/auth/password-reset", json={"email": user.email})
        with freeze_time("2026-03-01 00:00:00"):
            auth.login(email=user.email)
            client.post("/api/v1/auth/password-reset", json={"email": user.email})

            result = app.test_cli_runner().invoke(args=["prune-tokens"])

        assert result.exit_code == 0
        assert (
            "Deleted 1 expired session(s), 1 expired token(s) and 1 sent or skipped email(s) "
            "past MAIL_KEEP_SENT_DAYS."
        ) in result.output
        # January's reset email went; March's (sent a moment ago) stays.
        (kept,) = db.session.scalars(select(OutboxMessage)).all()
        assert kept.sent_at == datetime(2026, 3, 1, tzinfo=UTC)
        assert len(sessions_of(user)) == 1
        assert len(db.session.scalars(select(ActionToken)).all()) == 1

    def test_prune_tokens_when_run_deletes_expired_passkey_challenges_only(self, app, client):
        with freeze_time("2026-01-01 00:00:00"):
            client.post("/api/v1/auth/passkeys/login/options")
        with freeze_time("2026-03-01 00:00:00"):
            client.post("/api/v1/auth/passkeys/login/options")

            result = app.test_cli_runner().invoke(args=["prune-tokens"])

        assert result.exit_code == 0
        assert "1 expired token(s)" in result.output
        (kept,) = db.session.scalars(select(WebAuthnChallenge)).all()
        assert kept.created_at == datetime(2026, 3, 1, tzinfo=UTC)
