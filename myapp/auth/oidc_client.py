"""OpenID Connect's relying-party side, for one provider: discovery (cached), the
authorization URL (code flow with PKCE S256, ``state`` and ``nonce``), the code
exchange, and the checks of the ID token. Authlib makes the OAuth 2.0 requests;
joserfc checks the token. No database, no Flask request: ``oidc.py`` holds the
use cases.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

HTTP_TIMEOUT = 10  # seconds: a provider that hangs must not hold a worker for long
# Asymmetric algorithms only: an HS256 ID token would be signed with our client
# secret, which anyone who can read our configuration could forge.
ID_TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
CLOCK_SKEW = 60  # seconds of leeway on exp and iat


class OidcFailure(Exception):
    """A sign-in through a provider that cannot go on; ``code`` is what the console
    shows (a problem code, never a stack trace), ``reason`` is for the log."""

    def __init__(self, code: str, reason: str = "") -> None:
        super().__init__(reason or code)
        self.code = code
        self.reason = reason or code


class ProviderConfigError(ValueError):
    """MYAPP_OIDC_PROVIDERS is malformed (create_app refuses to start)."""


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    issuer: str
    client_id: str
    client_secret: str
    label: str
    scopes: tuple[str, ...] = ("openid", "email", "profile")


def parse_providers(value: Any) -> dict[str, ProviderSettings]:
    """``OIDC_PROVIDERS`` (a mapping, or its JSON text) as settings per provider name."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as error:
            raise ProviderConfigError(f"OIDC_PROVIDERS is not JSON: {error}") from None
    if not isinstance(value, Mapping):
        raise ProviderConfigError("OIDC_PROVIDERS must be a JSON object of providers")
    providers = {}
    for name, entry in value.items():
        if not (isinstance(name, str) and name.isascii() and name.replace("-", "").isalnum()):
            raise ProviderConfigError(f"OIDC provider name {name!r}: letters, digits and '-'")
        try:
            scopes = tuple(entry.get("scopes") or ProviderSettings.scopes)
            providers[name] = ProviderSettings(
                name=name,
                # Exactly as written: the ID token's iss must match it character
                # for character (OIDC Core 3.1.3.7), a trailing "/" included.
                issuer=str(entry["issuer"]),
                client_id=str(entry["client_id"]),
                client_secret=str(entry["client_secret"]),
                label=str(entry.get("label") or f"Sign in with {name}"),
                scopes=scopes,
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ProviderConfigError(f"OIDC provider {name!r}: missing {error}") from None
        if "openid" not in scopes:
            raise ProviderConfigError(f"OIDC provider {name!r}: scopes must include openid")
    return providers


@dataclass
class Discovered:
    """A provider's discovery document and key set, as fetched at ``fetched_at``."""

    metadata: dict[str, Any]
    keys: KeySet
    fetched_at: float


@dataclass
class DiscoveryCache:
    """Discovery documents and key sets per issuer, shared by the app's requests;
    kept ``ttl`` seconds, and the key set fetched again when a token names a key
    it does not hold (the provider rotated its keys)."""

    ttl: float = 3600
    _entries: dict[str, Discovered] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, issuer: str, http: requests.Session) -> Discovered:
        with self._lock:
            entry = self._entries.get(issuer)
        if entry is None or time.monotonic() - entry.fetched_at > self.ttl:
            entry = self._fetch(issuer, http)
        return entry

    def refresh_keys(self, issuer: str, http: requests.Session) -> Discovered:
        return self._fetch(issuer, http)

    def _fetch(self, issuer: str, http: requests.Session) -> Discovered:
        # OIDC Discovery 4: a terminating "/" is removed before the suffix is appended.
        url = f"{issuer.removesuffix('/')}/.well-known/openid-configuration"
        metadata = _get_json(http, url)
        # The document must be about the issuer we configured, identical (Discovery
        # 4.3): "https://host/" and "https://host" are two issuers to a token check.
        if metadata.get("issuer") != issuer:
            raise OidcFailure(
                "oidc_provider",
                f"discovery document of another issuer: {metadata.get('issuer')!r}",
            )
        keys = KeySet.import_key_set(cast(Any, _get_json(http, metadata["jwks_uri"])))
        entry = Discovered(metadata, keys, time.monotonic())
        with self._lock:
            self._entries[issuer] = entry
        return entry


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in: ``subject`` is the identity; the email is
    only as good as ``email_verified``."""

    subject: str
    email: str | None
    email_verified: bool


class OidcClient:
    def __init__(
        self,
        settings: ProviderSettings,
        redirect_uri: str,
        cache: DiscoveryCache,
        http: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.redirect_uri = redirect_uri
        self.cache = cache
        self.http = http or requests.Session()

    def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        metadata = self._discovered().metadata
        url, _ = self._session().create_authorization_url(
            metadata["authorization_endpoint"],
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,  # Authlib adds the S256 challenge of it
        )
        return str(url)

    def identity(
        self, *, code: str, code_verifier: str, nonce: str, iss: str | None
    ) -> ProviderIdentity:
        """Exchange the code, check the ID token, and read the email (from the
        token, or from userinfo when the token carries none)."""
        # RFC 9207: a callback naming another issuer is a mix-up attack.
        if iss is not None and iss != self.settings.issuer:
            raise OidcFailure("oidc_token", "callback iss is another issuer's")
        discovered = self._discovered()
        session = self._session()
        try:
            tokens = session.fetch_token(
                discovered.metadata["token_endpoint"],
                code=code,
                code_verifier=code_verifier,
                timeout=HTTP_TIMEOUT,
            )
        except Exception as error:  # noqa: BLE001 - any failure of the exchange is one outcome
            raise OidcFailure("oidc_exchange", f"token request failed: {error}") from None
        if "id_token" not in tokens:
            raise OidcFailure("oidc_token", "no id_token in the token response")
        claims = self._verify_id_token(tokens["id_token"], nonce)
        if "email" not in claims and discovered.metadata.get("userinfo_endpoint"):
            info = self._userinfo(session, discovered)
            # OIDC Core 5.3.2: userinfo about another subject must not be used.
            if info.get("sub") != claims["sub"]:
                raise OidcFailure("oidc_token", "userinfo is about another subject")
            claims = {
                **claims,
                "email": info.get("email"),
                "email_verified": info.get("email_verified"),
            }
        email = claims.get("email")
        return ProviderIdentity(
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            # Some providers send "true" as a string; anything else is not a yes.
            email_verified=claims.get("email_verified") in (True, "true"),
        )

    def _verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        discovered = self._discovered()
        try:
            token = _decode(id_token, discovered.keys)
        except (JoseError, ValueError):
            # Perhaps signed with a key published since we fetched the set.
            discovered = self.cache.refresh_keys(self.settings.issuer, self.http)
            try:
                token = _decode(id_token, discovered.keys)
            except (JoseError, ValueError) as error:
                raise OidcFailure("oidc_token", f"ID token signature: {error}") from None
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_SKEW,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(token.claims)
        except JoseError as error:
            raise OidcFailure("oidc_token", f"ID token claims: {error}") from None
        audience = token.claims["aud"]
        azp = token.claims.get("azp")
        # OIDC Core 3.1.3.7: several audiences need an azp, and an azp must be us.
        several = isinstance(audience, list) and len(audience) > 1
        if (several or azp is not None) and azp != self.settings.client_id:
            raise OidcFailure("oidc_token", "ID token azp is not our client")
        return dict(token.claims)

    def _userinfo(self, session: OAuth2Session, discovered: Discovered) -> dict[str, Any]:
        try:
            response = session.get(discovered.metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            info: dict[str, Any] = response.json()
        except Exception as error:  # noqa: BLE001 - the provider failed us, whatever the way
            raise OidcFailure("oidc_exchange", f"userinfo failed: {error}") from None
        return info

    def _discovered(self) -> Discovered:
        try:
            return self.cache.get(self.settings.issuer, self.http)
        except OidcFailure:
            raise
        except Exception as error:  # noqa: BLE001 - unreachable, malformed: one outcome
            raise OidcFailure("oidc_provider", f"discovery failed: {error}") from None

    def _session(self) -> OAuth2Session:
        return OAuth2Session(
            self.settings.client_id,
            self.settings.client_secret,
            scope=" ".join(self.settings.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
        )


def _decode(id_token: str, keys: KeySet) -> jwt.Token:
    return jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)


def _get_json(http: requests.Session, url: str) -> dict[str, Any]:
    response = http.get(url, timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body
