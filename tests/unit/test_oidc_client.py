"""``OidcClient`` without a network: the ID token checks with tokens signed here
(another issuer, audience or party, missing claims, expired, a wrong nonce, an HMAC
token, a key the provider rotated in), the callback's exchange and each way it
fails, the discovery cache's lifetime, and the provider list's parsing. The
provider's discovery document and key set come from a fake HTTP session; its token
endpoint and userinfo from a mock of the OAuth 2 session."""

from __future__ import annotations

import time
import unittest
from unittest import mock

from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from myapp.auth.oidc_client import (
    HTTP_TIMEOUT,
    DiscoveryCache,
    OidcClient,
    OidcFailure,
    ProviderConfigError,
    ProviderIdentity,
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
        self.metadata_extra: dict = {}

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
                    **self.metadata_extra,
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
    return jwt.encode({"alg": alg, "kid": signing_key.kid}, claims, signing_key, algorithms=[alg])


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
            "several audiences, no azp": id_token(aud=["myapp", "other"]),
            "issued to another party": id_token(azp="other"),
            "a key the provider never published": id_token(signing_key=key("stranger")),
            # Each of these claims must be there, not merely right when present.
            **{f"no {claim}": id_token(**{claim: None}) for claim in ("iss", "aud", "exp", "iat")},
        }
        for case, token in cases.items():
            with self.subTest(case), self.assertRaises(OidcFailure) as caught:
                self.verify(token)
            self.assertEqual(caught.exception.code, "oidc_token")

    def test_verify_when_refused_logs_which_check_refused_it(self):
        # The browser only hears "oidc_token"; the log says which check refused it.
        for token, reason in (
            (id_token(signing_key=key("stranger")), "ID token signature: "),
            (id_token(nonce="replayed"), "ID token claims: "),
            (id_token(azp="other"), "ID token azp is not our client"),
        ):
            with self.subTest(reason), self.assertRaises(OidcFailure) as caught:
                self.verify(token)
            self.assertTrue(caught.exception.reason.startswith(reason), caught.exception.reason)

    def test_verify_when_issued_to_us_accepts(self):
        accepted = {
            "several audiences, azp us": id_token(aud=["myapp", "other"], azp="myapp"),
            "one audience in a list": id_token(aud=["myapp"]),
            "one audience, azp us": id_token(azp="myapp"),
        }
        for case, token in accepted.items():
            with self.subTest(case):
                self.assertEqual(self.verify(token)["sub"], "248289761001")

    def test_verify_when_clocks_differ_by_less_than_a_minute_accepts(self):
        now = int(time.time())
        for case, token in {
            "expired 30 s ago": id_token(exp=now - 30),
            "issued 30 s from now": id_token(iat=now + 30),
        }.items():
            with self.subTest(case):
                self.assertEqual(self.verify(token)["sub"], "248289761001")

    def test_verify_when_signed_with_another_asymmetric_algorithm_accepts(self):
        # RSASSA-PSS: allowed here, though not among joserfc's default algorithms.
        self.assertEqual(self.verify(id_token(alg="PS256"))["sub"], "248289761001")

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
        documents = {
            "another host": {"issuer": "https://evil.example"},
            "a path below": {"issuer": f"{ISSUER}/evil"},
            # Identical means identical (Discovery 4.3): its tokens would carry this iss.
            "ours with a slash": {"issuer": f"{ISSUER}/"},
            "none": {},
        }
        for case, document in documents.items():
            with self.subTest(case):
                self.http.get = lambda url, timeout, document=document: FakeResponse(document)

                with self.assertRaises(OidcFailure) as caught:
                    self.client.authorization_url(state="s", nonce="n", code_verifier="v" * 43)
                failure = caught.exception
                self.assertEqual(
                    (failure.code, failure.reason),
                    (
                        "oidc_provider",
                        f"discovery document of another issuer: {document.get('issuer')!r}",
                    ),
                )


class TestIssuerWithATrailingSlash(unittest.TestCase):
    """A provider whose issuer ends in "/" (Auth0 writes "https://tenant.auth0.com/"):
    its discovery document is fetched without "//", and its tokens, which carry the
    slash, are accepted."""

    SLASHED = f"{ISSUER}/"

    def setUp(self) -> None:
        self.http = FakeProviderHttp([KEY])
        self.http.metadata_extra = {"issuer": self.SLASHED}
        settings = ProviderSettings("example", self.SLASHED, "myapp", "secret", "Example")
        self.client = OidcClient(settings, "https://app/cb", DiscoveryCache(), self.http)

    def test_discovery_when_issuer_ends_in_a_slash_fetches_without_a_double_slash(self):
        self.client.authorization_url(state="s", nonce="n", code_verifier="v" * 43)

        self.assertEqual(self.http.fetches[0], f"{ISSUER}/.well-known/openid-configuration")

    def test_verify_when_token_carries_the_slashed_issuer_accepts(self):
        token = id_token(iss=self.SLASHED)

        claims = self.client._verify_id_token(token, "n-0S6_WzA2Mj")

        self.assertEqual(claims["iss"], self.SLASHED)

    def test_verify_when_token_drops_the_slash_refuses(self):
        token = id_token(iss=ISSUER)

        with self.assertRaises(OidcFailure) as caught:
            self.client._verify_id_token(token, "n-0S6_WzA2Mj")

        self.assertEqual(caught.exception.code, "oidc_token")
        self.assertIn("iss", caught.exception.reason)


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
        self.assertEqual(settings.issuer, "https://gitlab.com/")  # exactly as written
        self.assertEqual(settings.scopes, ("openid", "email", "profile"))
        self.assertEqual(settings.label, "Sign in with gitlab")

    def test_parse_when_name_hyphenated_keeps_its_own_scopes_and_label(self):
        providers = parse_providers(
            {
                "corp-idp": {
                    "issuer": "https://idp.example.com",
                    "client_id": "a",
                    "client_secret": "b",
                    "scopes": ["openid", "email"],
                    "label": "Sign in with Corp",
                }
            }
        )

        settings = providers["corp-idp"]
        self.assertEqual(settings.scopes, ("openid", "email"))
        self.assertEqual(settings.label, "Sign in with Corp")

    def test_parse_when_malformed_refuses_naming_the_problem(self):
        entry = '{"issuer": "https://x", "client_id": "a", "client_secret": "b"}'
        cases = {
            "not JSON": (
                "{",
                "OIDC_PROVIDERS is not JSON: Expecting property name enclosed in "
                "double quotes: line 1 column 2 (char 1)",
            ),
            "not an object": ("[]", "OIDC_PROVIDERS must be a JSON object of providers"),
            "no client id": (
                '{"x": {"issuer": "https://x", "client_secret": "b"}}',
                "OIDC provider 'x': missing 'client_id'",
            ),
            "no openid scope": (
                '{"x": {"issuer": "https://x", "client_id": "a", "client_secret": "b", '
                '"scopes": ["email"]}}',
                "OIDC provider 'x': scopes must include openid",
            ),
            "a name that cannot be a path": (
                f'{{"a/b": {entry}}}',
                "OIDC provider name 'a/b': letters, digits and '-'",
            ),
            "a name of hyphens alone": (
                f'{{"-": {entry}}}',
                "OIDC provider name '-': letters, digits and '-'",
            ),
        }
        for case, (value, message) in cases.items():
            with self.subTest(case), self.assertRaises(ProviderConfigError) as caught:
                parse_providers(value)

            self.assertEqual(str(caught.exception), message)


class TestIdentity(unittest.TestCase):
    """The callback's exchange: the code for tokens (the provider's token endpoint
    and userinfo are a mock of the OAuth 2 session), the ID token checked, the email
    read from the token or, when it carries none, from userinfo."""

    def setUp(self) -> None:
        self.provider()

    def provider(self) -> None:
        """A provider that answers the exchange with an ID token carrying an email."""
        self.http = FakeProviderHttp([KEY])
        self.client = OidcClient(SETTINGS, f"{ISSUER}/cb", DiscoveryCache(), self.http)
        self.session = mock.Mock()
        self.session.fetch_token.return_value = {"id_token": id_token(email="ada@example.com")}
        self.enterContext(mock.patch.object(OidcClient, "_session", return_value=self.session))

    def identity(self, iss: str | None = None):
        return self.client.identity(code="c", code_verifier="v", nonce="n-0S6_WzA2Mj", iss=iss)

    def failure(self, iss: str | None = None) -> tuple[str, str]:
        with self.assertRaises(OidcFailure) as caught:
            self.identity(iss)
        return caught.exception.code, caught.exception.reason

    def answer_userinfo(self, **claims) -> None:
        self.http.metadata_extra = {"userinfo_endpoint": f"{ISSUER}/userinfo"}
        response = mock.Mock()
        response.json.return_value = claims
        self.session.get.return_value = response

    def test_identity_when_the_id_token_has_the_email_asks_nothing_more(self):
        self.answer_userinfo(sub="248289761001", email="other@example.com")
        self.session.fetch_token.return_value = {
            "id_token": id_token(email="ada@example.com", email_verified=True)
        }

        identity = self.identity()

        self.assertEqual(identity, ProviderIdentity("248289761001", "ada@example.com", True))
        self.session.get.assert_not_called()
        self.assertEqual(self.session.fetch_token.call_args.kwargs["timeout"], HTTP_TIMEOUT)

    def test_identity_when_the_id_token_has_no_email_reads_userinfo(self):
        self.session.fetch_token.return_value = {"id_token": id_token()}
        self.answer_userinfo(sub="248289761001", email="ada@example.com", email_verified="true")

        identity = self.identity()

        # Some providers send "true" as a string.
        self.assertEqual(identity, ProviderIdentity("248289761001", "ada@example.com", True))
        self.assertEqual(self.session.get.call_args.kwargs["timeout"], HTTP_TIMEOUT)

    def test_identity_when_the_claims_are_not_a_clear_yes_is_unverified_or_without_email(self):
        for email, verified, expected in (
            ("ada@example.com", "yes", ("ada@example.com", False)),
            ("ada@example.com", None, ("ada@example.com", False)),
            (42, True, (None, True)),
        ):
            with self.subTest(email=email, verified=verified):
                token = id_token(email=email, email_verified=verified)
                self.session.fetch_token.return_value = {"id_token": token}

                identity = self.identity()

                self.assertEqual((identity.email, identity.email_verified), expected)

    def test_identity_when_the_callback_names_our_issuer_exactly_accepts(self):
        self.assertEqual(self.identity(iss=ISSUER).subject, "248289761001")

    def test_identity_when_a_step_fails_names_the_problem_and_why(self):
        def token_request_fails():
            self.session.fetch_token.side_effect = ConnectionError("refused")

        def no_id_token():
            self.session.fetch_token.return_value = {"access_token": "a"}

        def userinfo_of_another_subject():
            self.session.fetch_token.return_value = {"id_token": id_token()}
            self.answer_userinfo(sub="someone-else", email="eve@example.com")

        def userinfo_fails():
            self.session.fetch_token.return_value = {"id_token": id_token()}
            self.answer_userinfo()
            self.session.get.side_effect = ConnectionError("reset")

        def discovery_fails():
            self.http.get = mock.Mock(side_effect=ConnectionError("unreachable"))

        cases = {
            **{
                f"callback from issuer {iss}": (
                    None,
                    ("oidc_token", "callback iss is another issuer's"),
                    iss,
                )
                # RFC 9207 2.4: a simple string comparison, so our issuer plus "/" is another.
                for iss in ("https://evil.example", f"{ISSUER}/")
            },
            "token request fails": (
                token_request_fails,
                ("oidc_exchange", "token request failed: refused"),
                None,
            ),
            "no ID token": (no_id_token, ("oidc_token", "no id_token in the token response"), None),
            "userinfo of another subject": (
                userinfo_of_another_subject,
                ("oidc_token", "userinfo is about another subject"),
                None,
            ),
            "userinfo fails": (userinfo_fails, ("oidc_exchange", "userinfo failed: reset"), None),
            "discovery fails": (
                discovery_fails,
                ("oidc_provider", "discovery failed: unreachable"),
                None,
            ),
        }
        for case, (arrange, expected, iss) in cases.items():
            with self.subTest(case):
                self.provider()
                if arrange is not None:
                    arrange()

                self.assertEqual(self.failure(iss), expected)


class TestDiscoveryCache(unittest.TestCase):
    def test_document_when_younger_than_its_ttl_is_reused_and_then_fetched_again(self):
        http = FakeProviderHttp([KEY])
        cache = DiscoveryCache(ttl=60)
        with mock.patch("myapp.auth.oidc_client.time.monotonic", return_value=1000.0) as now:
            cache.get(ISSUER, http)
            now.return_value = 1060.0  # exactly the ttl later: still fresh
            cache.get(ISSUER, http)
            fetched_at_ttl = len(http.fetches)
            now.return_value = 1060.5
            cache.get(ISSUER, http)

        self.assertEqual((fetched_at_ttl, len(http.fetches)), (2, 4))  # document + keys, twice
