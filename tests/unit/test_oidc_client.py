"""The ID token checks of ``OidcClient``, with tokens signed here: another issuer,
another audience, expired, a wrong nonce, an unsigned or HMAC token, a key the
provider rotated in, and the provider list's parsing. No network: the provider's
discovery document and key set come from a fake HTTP session."""

from __future__ import annotations

import time
import unittest

from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from myapp.auth.oidc_client import (
    HTTP_TIMEOUT,
    DiscoveryCache,
    OidcClient,
    OidcFailure,
    ProviderConfigError,
    ProviderSettings,
    parse_providers,
)

ISSUER = "https://id.example.com"
SETTINGS = ProviderSettings("example", ISSUER, "myapp", "secret", "Sign in with Example")


class FakeResponse:
    def __init__(self, body: dict) -> None:
        self.body = body

    def json(self) -> dict:
        return self.body

    def raise_for_status(self) -> None:
        return None


class FakeProviderHttp:
    """The provider's discovery document and its current key set."""

    def __init__(self, keys: list[RSAKey]) -> None:
        self.keys = keys
        self.fetches: list[str] = []
        self.timeouts: list[float | None] = []

    def get(self, url: str, timeout: float | None) -> FakeResponse:
        self.fetches.append(url)
        self.timeouts.append(timeout)
        if url.endswith("/.well-known/openid-configuration"):
            return FakeResponse(
                {
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                }
            )
        return FakeResponse(KeySet(self.keys).as_dict(private=False))


def key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


KEY = key("k1")


def id_token(signing_key=KEY, alg: str = "RS256", **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "myapp",
        "sub": "248289761001",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-0S6_WzA2Mj",
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": alg, "kid": signing_key.kid}, claims, signing_key)


class TestIdTokenChecks(unittest.TestCase):
    def setUp(self) -> None:
        self.http = FakeProviderHttp([KEY])
        self.client = OidcClient(SETTINGS, f"{ISSUER}/cb", DiscoveryCache(), self.http)

    def verify(self, token: str) -> dict:
        return self.client._verify_id_token(token, "n-0S6_WzA2Mj")

    def test_verify_when_everything_holds_returns_the_claims(self):
        claims = self.verify(id_token())

        self.assertEqual(claims["sub"], "248289761001")

    def test_verify_when_refused_names_the_problem_code_oidc_token(self):
        cases = {
            "another issuer": id_token(iss="https://evil.example.com"),
            "another audience": id_token(aud="someone-else"),
            "expired": id_token(exp=int(time.time()) - 120),
            "issued in the future": id_token(iat=int(time.time()) + 3600),
            "another nonce": id_token(nonce="replayed"),
            "no nonce": id_token(nonce=None),
            "no subject": id_token(sub=None),
            "several audiences, not issued to us": id_token(aud=["myapp", "other"], azp="other"),
            "a key the provider never published": id_token(signing_key=key("stranger")),
        }
        for case, token in cases.items():
            with self.subTest(case), self.assertRaises(OidcFailure) as caught:
                self.verify(token)
            self.assertEqual(caught.exception.code, "oidc_token")

    def test_verify_when_several_audiences_and_issued_to_us_accepts(self):
        claims = self.verify(id_token(aud=["myapp", "other"], azp="myapp"))

        self.assertEqual(claims["azp"], "myapp")

    def test_verify_when_hmac_signed_with_a_guessable_secret_refuses(self):
        # HS256 with our client secret: anyone holding our configuration could forge it.
        forged = jwt.encode(
            {"alg": "HS256"},
            {"iss": ISSUER, "aud": "myapp", "sub": "x", "nonce": "n-0S6_WzA2Mj"},
            OctKey.import_key("secret-secret-secret-secret-1234"),
        )

        with self.assertRaises(OidcFailure):
            self.verify(forged)

    def test_fetches_when_made_never_wait_on_the_provider_without_a_limit(self):
        # A provider that hangs must not hold a worker for ever.
        self.verify(id_token())

        self.assertEqual(len(self.http.fetches), 2)  # discovery, then the key set
        self.assertEqual(self.http.timeouts, [HTTP_TIMEOUT, HTTP_TIMEOUT])

    def test_verify_when_provider_rotated_its_key_fetches_the_key_set_again(self):
        self.verify(id_token())  # the old key set is cached now
        rotated = key("k2")
        self.http.keys = [KEY, rotated]

        claims = self.verify(id_token(signing_key=rotated))

        self.assertEqual(claims["sub"], "248289761001")
        self.assertEqual(sum(url.endswith("/jwks") for url in self.http.fetches), 2)

    def test_discovery_when_document_names_another_issuer_or_none_refuses(self):
        for document in ({"issuer": "https://evil.example"}, {"issuer": f"{ISSUER}/evil"}, {}):
            with self.subTest(document=document):
                self.http.get = lambda url, timeout, document=document: FakeResponse(document)

                with self.assertRaises(OidcFailure) as caught:
                    self.client.authorization_url(state="s", nonce="n", code_verifier="v" * 43)
                failure = caught.exception
                self.assertEqual(
                    (failure.code, failure.reason),
                    ("oidc_provider", "discovery document of another issuer"),
                )

    def test_discovery_when_document_names_the_issuer_with_a_trailing_slash_accepts(self):
        # Some providers publish "https://host/" while the setting reads "https://host".
        fetch = self.http.get

        def slashed(url: str, timeout: float) -> FakeResponse:
            response = fetch(url, timeout)
            if url.endswith("/openid-configuration"):
                response.body = {**response.body, "issuer": f"{ISSUER}/"}
            return response

        self.http.get = slashed

        url = self.client.authorization_url(state="s", nonce="n", code_verifier="v" * 43)

        self.assertTrue(url.startswith(f"{ISSUER}/auth?"))


class TestFailure(unittest.TestCase):
    def test_failure_when_no_reason_given_logs_its_code(self):
        failure = OidcFailure("oidc_token")

        self.assertEqual((failure.reason, str(failure)), ("oidc_token", "oidc_token"))

    def test_failure_when_reason_given_logs_the_reason(self):
        failure = OidcFailure("oidc_token", "nonce mismatch")

        self.assertEqual((failure.reason, str(failure)), ("nonce mismatch", "nonce mismatch"))


class TestParseProviders(unittest.TestCase):
    def test_parse_when_json_given_fills_in_defaults(self):
        providers = parse_providers(
            '{"gitlab": {"issuer": "https://gitlab.com/", "client_id": "a", "client_secret": "b"}}'
        )

        settings = providers["gitlab"]
        self.assertEqual(settings.issuer, "https://gitlab.com")
        self.assertEqual(settings.scopes, ("openid", "email", "profile"))
        self.assertEqual(settings.label, "Sign in with gitlab")

    def test_parse_when_malformed_refuses_naming_the_problem(self):
        cases = {
            "not JSON": ("{", "not JSON"),
            "not an object": ("[]", "JSON object"),
            "no client id": ('{"x": {"issuer": "https://x", "client_secret": "b"}}', "client_id"),
            "no openid scope": (
                '{"x": {"issuer": "https://x", "client_id": "a", "client_secret": "b", '
                '"scopes": ["email"]}}',
                "openid",
            ),
            "a name that cannot be a path": (
                '{"a/b": {"issuer": "https://x", "client_id": "a", "client_secret": "b"}}',
                "letters, digits",
            ),
        }
        for case, (value, message) in cases.items():
            with self.subTest(case), self.assertRaisesRegex(ProviderConfigError, message):
                parse_providers(value)
