"""Sign-in through OpenID Providers, and the identities linked to accounts.

Linking is explicit: an identity is linked when a signed-in user asks for it, or
when a provider vouches for an address no account uses (a new account). An
unknown identity whose address an account already uses is never linked on its own:
whoever controls a provider account with that address (an unverified one, a
recycled one) would otherwise take the account over.

Use cases, one transaction each: ``start`` (a pending sign-in), ``take`` (spending
it at the callback) and ``complete`` (its outcome, after the provider's answer,
which is fetched with no transaction open), ``identities``, ``unlink``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from myapp.audit import audit
from myapp.auth.account import digest
from myapp.auth.models import OidcAuthorization, OidcIdentity
from myapp.auth.oidc_client import (
    DiscoveryCache,
    OidcClient,
    OidcFailure,
    ProviderIdentity,
    ProviderSettings,
    parse_providers,
)
from myapp.auth.repository import DuplicateIdentityError, OidcRepository, PasskeyRepository
from myapp.auth.service import AuthService, ClientInfo, MfaRequired
from myapp.auth.tokens import TokenPair
from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import Conflict, NotFound
from myapp.outbox.service import Outbox
from myapp.passwords import is_usable, unusable_password
from myapp.users.models import USERNAME_MAX_LENGTH, USERNAME_MIN_LENGTH, User
from myapp.users.repository import DuplicateUserError, UserRepository
from myapp.users.schemas import normalise_email

AUTHORIZATION_LIFETIME = timedelta(minutes=10)
# Shared by the app's requests in this process: discovery and keys, fetched once.
DISCOVERY = DiscoveryCache()


class UnknownProvider(NotFound):
    detail = "No such sign-in provider."


class IdentityNotFound(NotFound):
    detail = "Linked account not found."


class LastWayIn(Conflict):
    detail = (
        "This is the account's last way to sign in: set a password (through the "
        "password reset) or add a passkey before unlinking it."
    )


@dataclass(frozen=True)
class Pending:
    """A pending sign-in, spent at its callback: what the outcome needs."""

    provider: str
    nonce: str
    code_verifier: str
    next_path: str
    link_user_id: int | None


@dataclass(frozen=True)
class SignedIn:
    tokens: TokenPair
    next_path: str


@dataclass(frozen=True)
class SecondStep:
    # No next path: the console's second step signs in to its own start page.
    mfa: MfaRequired


@dataclass(frozen=True)
class Linked:
    next_path: str


Outcome = SignedIn | SecondStep | Linked


def browser_digest(secret: str) -> str:
    return digest(f"oidc-browser:{secret}")


class OidcService:
    def __init__(
        self,
        users: UserRepository,
        repository: OidcRepository,
        passkeys: PasskeyRepository,
        auth: AuthService,
        outbox: Outbox,
        uow: UnitOfWork,
        *,
        providers: dict[str, ProviderSettings],
        client_for: Callable[[ProviderSettings], OidcClient],
    ) -> None:
        self.users = users
        self.repository = repository
        self.passkeys = passkeys
        self.auth = auth
        self.outbox = outbox
        self.uow = uow
        self.providers = providers
        self.client_for = client_for

    @classmethod
    def from_app(cls) -> OidcService:
        base = current_app.config["APP_BASE_URL"]

        def client_for(settings: ProviderSettings) -> OidcClient:
            # From APP_BASE_URL, never the Host header: the provider checks it anyway.
            redirect_uri = f"{base}/api/v1/auth/oidc/{settings.name}/callback"
            return OidcClient(settings, redirect_uri, DISCOVERY)

        auth = AuthService.from_app()
        return cls(
            auth.users,
            OidcRepository(),
            PasskeyRepository(),
            auth,
            Outbox.from_app(),
            auth.uow,
            providers=parse_providers(current_app.config["OIDC_PROVIDERS"]),
            client_for=client_for,
        )

    def list_providers(self) -> list[ProviderSettings]:
        return list(self.providers.values())

    # -- the flow ---------------------------------------------------------------------
    def start(
        self, provider: str, next_path: str, browser: str, *, link_user: User | None = None
    ) -> str:
        """Store a pending sign-in (or link, for ``link_user``) bound to this browser;
        the provider's authorization URL to send it to."""
        settings = self.settings(provider)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        # Discovery may fetch from the provider: before the transaction, not in it.
        url = self.client_for(settings).authorization_url(
            state=state, nonce=nonce, code_verifier=verifier
        )
        now = utcnow()
        with self.uow:
            self.repository.add_authorization(
                OidcAuthorization(
                    state_hash=digest(state),
                    browser_hash=browser_digest(browser),
                    provider=provider,
                    nonce=nonce,
                    code_verifier=verifier,
                    next_path=next_path,
                    link_user_id=link_user.id if link_user is not None else None,
                    created_at=now,
                    expires_at=now + AUTHORIZATION_LIFETIME,
                )
            )
        audit("oidc.started", user_id=link_user.id if link_user else None, provider=provider)
        return url

    def take(self, provider: str, state: str, browser: str | None) -> Pending:
        """Spend the pending sign-in this callback names: it must be alive, of this
        provider, and started by this browser (or the callback is a login CSRF)."""
        self.settings(provider)
        with self.uow:
            authorization = self.repository.take_authorization(digest(state), utcnow())
            if (
                authorization is None
                or authorization.expires_at <= utcnow()
                or authorization.provider != provider
                or browser is None
                or authorization.browser_hash != browser_digest(browser)
            ):
                raise OidcFailure("oidc_state", "unknown, used, expired or another browser's")
            return Pending(
                provider,
                authorization.nonce,
                authorization.code_verifier,
                authorization.next_path,
                authorization.link_user_id,
            )

    def complete(
        self, pending: Pending, *, code: str, iss: str | None, client: ClientInfo
    ) -> Outcome:
        """The provider's answer (fetched and checked with no transaction open),
        then its outcome in one transaction: a link, a sign-in, or a new account."""
        client_ = self.client_for(self.settings(pending.provider))
        identity = client_.identity(
            code=code, code_verifier=pending.code_verifier, nonce=pending.nonce, iss=iss
        )
        if pending.link_user_id is not None:
            return self._link(pending, pending.link_user_id, identity)
        return self._sign_in(pending, identity, client)

    def _link(self, pending: Pending, user_id: int, identity: ProviderIdentity) -> Linked:
        with self.uow:
            user = self.users.get(user_id)
            if user is None or not user.is_active:
                raise OidcFailure("oidc_state", "the linking user is gone")
            existing = self.repository.identity(pending.provider, identity.subject)
            if existing is not None and existing.user_id != user.id:
                raise OidcFailure("oidc_linked_elsewhere", "linked to another account")
            if existing is None:
                self._add_identity(user, pending.provider, identity)
                self._tell(
                    user,
                    "An account was linked to yours",
                    f"Your {pending.provider} account ({identity.email or identity.subject}) "
                    "can now sign in to your account.",
                    kind="oidc_linked",
                )
        audit("oidc.linked", user_id=user.id, provider=pending.provider)
        return Linked(pending.next_path)

    def _sign_in(self, pending: Pending, identity: ProviderIdentity, client: ClientInfo) -> Outcome:
        with self.uow:
            linked = self.repository.identity(pending.provider, identity.subject)
            if linked is not None:
                user = self.users.get(linked.user_id)
                if user is None or not user.is_active:
                    raise OidcFailure("oidc_inactive", "the linked account is inactive")
                linked.last_used_at = utcnow()
            else:
                user = self._new_account(pending.provider, identity)
            # The provider is one factor: an account with a second one still asks for it.
            if user.is_mfa_enabled:
                outcome: Outcome = SecondStep(self.auth.require_second_step(user))
            else:
                tokens = self.auth.start_session(user, client, method=f"oidc:{pending.provider}")
                if tokens is None:
                    raise OidcFailure("oidc_inactive", "the account changed meanwhile")
                outcome = SignedIn(tokens, pending.next_path)
        return outcome

    def _new_account(self, provider: str, identity: ProviderIdentity) -> User:
        """A verified account without a password for an identity whose verified
        address no account uses; never a link to an existing one."""
        if identity.email is None or not identity.email_verified:
            raise OidcFailure("oidc_email_unverified", "the provider does not vouch for it")
        email = normalise_email(identity.email)
        if self.users.get_by_email(email) is not None:
            raise OidcFailure("oidc_account_exists", "an account uses this address")
        user = None
        for username in _usernames(email):
            candidate = User(
                email=email,
                username=username,
                password_hash=unusable_password(),
                is_verified=True,  # the provider vouched for the address
            )
            try:
                user = self.users.add(candidate)
                break
            except DuplicateUserError:
                if self.users.get_by_email(email) is not None:
                    raise OidcFailure("oidc_account_exists", "registered meanwhile") from None
        if user is None:
            raise OidcFailure("oidc_account_exists", "no free username")
        self._add_identity(user, provider, identity)
        self.uow.on_commit(
            lambda: audit("oidc.account_created", user_id=user.id, provider=provider)
        )
        return user

    def _add_identity(self, user: User, provider: str, identity: ProviderIdentity) -> None:
        try:
            self.repository.add_identity(
                OidcIdentity(
                    user_id=user.id,
                    provider=provider,
                    subject=identity.subject,
                    email=normalise_email(identity.email) if identity.email else None,
                    created_at=utcnow(),
                )
            )
        except DuplicateIdentityError:
            raise OidcFailure("oidc_linked_elsewhere", "linked meanwhile") from None

    # -- linked identities ------------------------------------------------------------
    def identities(self, user: User) -> list[OidcIdentity]:
        return self.repository.identities_for(user.id)

    def unlink(self, user: User, identity_id: str) -> None:
        """Remove a linked identity; never the account's last way to sign in."""
        with self.uow:
            identity = self.repository.identity_for_user(identity_id, user.id)
            if identity is None:
                raise IdentityNotFound()  # another user's is "not found": no oracle
            others = self.repository.count_for_user(user.id) - 1
            if (
                others == 0
                and not is_usable(user.password_hash)
                and self.passkeys.count_for_user(user.id) == 0
            ):
                raise LastWayIn()
            provider = identity.provider
            self.repository.delete_identity(identity)
            self._tell(
                user,
                "An account was unlinked from yours",
                f"Your {provider} account can no longer sign in to your account.",
                kind="oidc_unlinked",
            )
        audit("oidc.unlinked", user_id=user.id, provider=provider)

    def settings(self, provider: str) -> ProviderSettings:
        settings = self.providers.get(provider)
        if settings is None:
            raise UnknownProvider()
        return settings

    def _tell(self, user: User, subject: str, what: str, *, kind: str) -> None:
        self.outbox.queue_notice(user.email, subject, what, kind=kind)


def _usernames(email: str) -> list[str]:
    """Usernames to try for a new account: the address's local part made a valid
    username, then with random suffixes."""
    base = re.sub(r"[^a-z0-9_.-]", "", email.split("@")[0].lower())[: USERNAME_MAX_LENGTH - 7]
    base = base.ljust(USERNAME_MIN_LENGTH, "_")
    return [base] + [f"{base}-{secrets.token_hex(3)}" for _ in range(4)]
