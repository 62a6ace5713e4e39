"""Asymmetric tokens (EdDSA, RS256): what other services need to verify them on
their own. Tokens name their key; /.well-known/jwks.json publishes the public keys
(and nothing private); a rotation signs with the new key while the old one still
verifies; a token of an unknown key, or of another algorithm, is refused.

Each test runs its own app (the algorithm is read at start-up), so none uses the
suite's `user` fixture: on PostgreSQL that app has a connection of its own, which
the suite's open transaction would block."""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from werkzeug.serving import make_server

from myapp.signing_keys import PUBLIC_MEMBERS, new_key_set, parse_key_set, write_key_set
from tests.conftest import bearer
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.database import variant_app

JWKS = "/.well-known/jwks.json"
ME = "/api/v1/users/me"


@pytest.fixture(params=["EdDSA", "RS256"])
def signed(request, tmp_path):
    """An app signing with a key set file; its algorithm, the file, and a user's login."""
    path = tmp_path / "jwks.json"
    write_key_set(path, new_key_set(request.param))
    with variant_app(JWT_ALGORITHM=request.param, JWT_PRIVATE_KEYS=str(path)) as app:
        user = UserFactory(email="keys@example.com", username="keys")
        client = app.test_client()

        def login() -> dict:
            body = {"email": user.email, "password": DEFAULT_PASSWORD}
            return client.post("/api/v1/auth/login", json=body).get_json()

        yield request.param, path, app, client, login


class TestAsymmetricTokens:
    def test_token_when_issued_names_its_key_and_verifies_with_the_published_one(self, signed):
        algorithm, _, _, client, login = signed
        tokens = login()

        header = pyjwt.get_unverified_header(tokens["access_token"])
        published = pyjwt.PyJWKSet.from_dict(client.get(JWKS).get_json())
        claims = pyjwt.decode(
            tokens["access_token"],
            published[header["kid"]].key,
            algorithms=[algorithm],
            audience="myapp-api",
            issuer="myapp",
        )

        assert header["alg"] == algorithm
        assert claims["type"] == "access"
        assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200

    def test_jwks_when_fetched_is_public_cacheable_and_holds_nothing_private(self, signed):
        algorithm, _, _, client, _ = signed

        response = client.get(JWKS)

        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=300"
        for jwk in response.get_json()["keys"]:
            assert set(jwk) <= PUBLIC_MEMBERS
            assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)

    def test_rotation_when_done_signs_anew_and_old_tokens_still_verify(self, signed):
        algorithm, path, app, client, login = signed
        before = login()
        old_kid = pyjwt.get_unverified_header(before["access_token"])["kid"]

        result = app.test_cli_runner().invoke(args=["keys", "rotate"])
        after = login()

        assert result.exit_code == 0, result.output
        new_kid = pyjwt.get_unverified_header(after["access_token"])["kid"]
        assert new_kid != old_kid
        assert [k["kid"] for k in client.get(JWKS).get_json()["keys"]] == [new_kid, old_kid]
        for tokens in (before, after):
            assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200

    def test_token_when_its_key_is_known_is_checked_without_reading_the_key_file(
        self, signed, mocker
    ):
        algorithm, path, app, client, login = signed
        token = login()["access_token"]  # the set is read by now
        parse = mocker.patch("myapp.signing_keys.parse_key_set", wraps=parse_key_set)

        statuses = [client.get(ME, headers=bearer(token)).status_code for _ in range(3)]

        # Every token check asks for the set: it is read when the file changes, never per token.
        assert (statuses, parse.call_count) == ([200] * 3, 0)

    def test_token_when_signed_by_a_key_another_process_just_added_is_accepted(self, signed):
        algorithm, path, app, client, login = signed
        claims = pyjwt.decode(login()["access_token"], options={"verify_signature": False})
        # Another machine of the fleet rotates the shared file and signs with the new
        # key at once; here the file looks unchanged (same mtime), as it may for up to
        # a second: the unknown kid alone must make this process read it again.
        seen = path.stat()
        rotated = parse_key_set(path.read_text(), algorithm).rotated(datetime.now(UTC))
        write_key_set(path, rotated)
        os.utime(path, ns=(seen.st_atime_ns, seen.st_mtime_ns))
        token = pyjwt.encode(
            claims,
            rotated.signer.private_key,
            algorithm=algorithm,
            headers={"kid": rotated.signer.kid},
        )

        response = client.get(ME, headers=bearer(token))

        assert (response.status_code, response.get_json()["email"]) == (200, "keys@example.com")

    def test_token_when_its_key_was_pruned_is_refused(self, signed):
        algorithm, path, app, client, login = signed
        before = login()
        app.test_cli_runner().invoke(args=["keys", "rotate"])
        # Pruning as if every token of the old key had expired (lifetimes of zero).
        app.config["JWT_ACCESS_TOKEN_EXPIRES"] = app.config["JWT_REFRESH_TOKEN_EXPIRES"] = (
            timedelta(0)
        )

        result = app.test_cli_runner().invoke(args=["keys", "prune"])

        assert "Removed 1 retired key(s)" in result.output
        response = client.get(ME, headers=bearer(before["access_token"]))
        assert response.status_code == 401
        assert response.get_json()["detail"] == "Invalid token."

    def test_token_failures_when_signed_asymmetrically_are_the_usual_401_problems(self, signed):
        # The answers are wired when the app is built: this app is built here.
        algorithm, _, app, client, login = signed
        refreshed = client.post(
            "/api/v1/auth/refresh", headers=bearer(login()["refresh_token"])
        ).get_json()
        app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=-1)
        expired = login()["access_token"]

        answers = {
            "missing": client.get(ME),
            "expired": client.get(ME, headers=bearer(expired)),
            "not fresh": client.post(
                "/api/v1/auth/passkeys/register/options",
                json={},
                headers=bearer(refreshed["access_token"]),
            ),
        }

        assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 401)
        assert {name: r.mimetype for name, r in answers.items()} == dict.fromkeys(
            answers, "application/problem+json"
        )
        assert {name: r.get_json()["detail"] for name, r in answers.items()} == {
            "missing": "Missing bearer token.",
            "expired": "Token has expired.",
            "not fresh": "A fresh token is required: log in again.",
        }

    def test_token_when_signed_with_the_shared_secret_is_refused(self, signed):
        algorithm, _, app, client, login = signed
        claims = pyjwt.decode(login()["access_token"], options={"verify_signature": False})

        forged = pyjwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")

        response = client.get(ME, headers=bearer(forged))
        assert response.status_code == 401
        assert response.get_json()["detail"] == "Invalid token."

    def test_token_when_signed_by_a_key_of_the_same_name_not_ours_is_refused(self, signed):
        algorithm, _, _, client, login = signed
        tokens = login()
        header = pyjwt.get_unverified_header(tokens["access_token"])
        claims = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
        impostor = new_key_set(algorithm).signer

        forged = pyjwt.encode(
            claims, impostor.private_key, algorithm=algorithm, headers={"kid": header["kid"]}
        )

        response = client.get(ME, headers=bearer(forged))
        assert response.status_code == 401
        assert response.get_json()["detail"] == "Invalid token."


# Names of 1, 2 and 3 characters give the header's base64 every length it can have
# (its padding differs in each): the key is picked from that header.
@pytest.mark.parametrize("kid", ["a", "ab", "abc"])
def test_token_when_its_key_has_a_name_the_operator_chose_verifies(tmp_path, kid):
    (entry,) = json.loads(new_key_set("EdDSA").to_json())["keys"]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**entry, "kid": kid}]}))
    with variant_app(JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEYS=str(path)) as app:
        user = UserFactory(email="keys@example.com", username="keys")
        client = app.test_client()
        body = {"email": user.email, "password": DEFAULT_PASSWORD}
        token = client.post("/api/v1/auth/login", json=body).get_json()["access_token"]

        response = client.get(ME, headers=bearer(token))

    assert pyjwt.get_unverified_header(token)["kid"] == kid
    assert (response.status_code, response.get_json()["email"]) == (200, user.email)


def test_jwks_when_tokens_are_hs256_is_an_empty_set(client):
    response = client.get(JWKS)

    assert response.status_code == 200
    assert response.get_json() == {"keys": []}  # a shared secret is never published


README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE = re.compile(
    r"<!-- verifier-example:start -->\s*```python\n(.*?)```\s*<!-- verifier-example:end -->", re.S
)


@pytest.fixture
def served(signed):
    """The signing app on a real port: the verifier fetches its JWKS over HTTP."""
    algorithm, _, app, _, login = signed
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", login
    server.shutdown()
    thread.join(timeout=5)


class TestReadmeVerifier:
    def test_readme_verifier_when_run_as_written_accepts_access_and_refuses_refresh(self, served):
        base, login = served
        code = EXAMPLE.search(README.read_text()).group(1)
        namespace: dict = {}
        exec(code.replace("https://accounts.example.com", base), namespace)  # noqa: S102
        tokens = login()

        claims = namespace["verify"](tokens["access_token"])

        assert claims["sub"] and claims["type"] == "access"
        with pytest.raises(pyjwt.InvalidTokenError, match="not an access token"):
            namespace["verify"](tokens["refresh_token"])
