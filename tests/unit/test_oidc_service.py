"""OidcService's account creation, with its collaborators mocked: the races and
the dead ends a real provider cannot be made to produce on demand (the flow
itself, against a real provider, is in tests/api/test_oidc.py)."""

from __future__ import annotations

import re
import unittest
from unittest import mock

from myapp.auth.oidc import OidcService, Pending, SignedIn
from myapp.auth.oidc_client import OidcClient, OidcFailure, ProviderIdentity
from myapp.auth.repository import DuplicateIdentityError, OidcRepository, PasskeyRepository
from myapp.auth.service import AuthService, ClientInfo
from myapp.outbox.service import Outbox
from myapp.users.models import USERNAME_MAX_LENGTH, User
from myapp.users.repository import DuplicateUserError, UserRepository

PENDING = Pending("example", "nonce", "verifier", "/account", None)


class NewAccountTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.users.get_by_email.return_value = None
        self.users.add.side_effect = lambda user: user
        self.repository = mock.create_autospec(OidcRepository, instance=True)
        self.repository.identity.return_value = None  # nobody linked this identity yet
        self.auth = mock.create_autospec(AuthService, instance=True)
        self.provider = mock.create_autospec(OidcClient, instance=True)
        self.service = OidcService(
            self.users,
            self.repository,
            mock.create_autospec(PasskeyRepository, instance=True),
            self.auth,
            mock.create_autospec(Outbox, instance=True),
            mock.MagicMock(),  # the unit of work: a context manager here
            providers={"example": mock.Mock()},
            client_for=lambda settings: self.provider,
        )

    def sign_in(self, email: str | None, verified: bool = True):
        self.provider.identity.return_value = ProviderIdentity("sub-1", email, verified)
        return self.service.complete(PENDING, code="c", iss=None, client=ClientInfo())

    def failure(self, email: str | None, verified: bool = True) -> tuple[str, str]:
        with self.assertRaises(OidcFailure) as caught:
            self.sign_in(email, verified)
        return caught.exception.code, caught.exception.reason

    def created(self) -> User:
        (user,) = self.users.add.call_args_list[-1].args
        return user


class TestNewAccount(NewAccountTestCase):
    def test_new_account_when_address_verified_is_made_from_it_and_signed_in(self):
        outcome = self.sign_in("Ada.Lovelace+Tag@Example.com")

        user = self.created()
        self.assertIsInstance(outcome, SignedIn)
        self.assertEqual(
            (user.email, user.username), ("ada.lovelace+tag@example.com", "ada.lovelacetag")
        )
        self.auth.start_session.assert_called_once_with(user, ClientInfo(), method="oidc:example")

    def test_username_when_local_part_short_is_padded_to_the_minimum(self):
        self.sign_in("a@example.com")

        self.assertEqual(self.created().username, "a__")

    def test_username_when_local_part_long_leaves_room_for_a_suffix(self):
        self.users.add.side_effect = self._taken_once()

        self.sign_in("x" * 64 + "@example.com")

        first, second = (call.args[0].username for call in self.users.add.call_args_list)
        self.assertEqual(first, "x" * (USERNAME_MAX_LENGTH - 7))
        self.assertRegex(second, rf"\A{first}-[0-9a-f]{{6}}\Z")
        self.assertEqual(len(second), USERNAME_MAX_LENGTH)

    def _taken_once(self):
        calls = []

        def add(user: User) -> User:
            calls.append(user)
            if len(calls) == 1:
                raise DuplicateUserError("username taken")
            return user

        return add


class TestNoNewAccount(NewAccountTestCase):
    def test_new_account_when_address_unverified_or_missing_is_refused(self):
        for email, verified in (("ada@example.com", False), (None, True)):
            with self.subTest(email=email, verified=verified):
                self.assertEqual(
                    self.failure(email, verified),
                    ("oidc_email_unverified", "the provider does not vouch for it"),
                )
        self.users.add.assert_not_called()

    def test_new_account_when_an_account_has_the_address_is_refused_not_linked(self):
        self.users.get_by_email.return_value = User(email="ada@example.com", username="ada")

        self.assertEqual(
            self.failure("Ada@Example.com"),
            ("oidc_account_exists", "an account uses this address"),
        )
        self.users.get_by_email.assert_called_once_with("ada@example.com")
        self.users.add.assert_not_called()

    def test_new_account_when_the_address_registered_meanwhile_is_refused(self):
        # The first look finds nobody; the insert then collides with a registration.
        self.users.get_by_email.side_effect = [None, User(email="ada@example.com", username="ada")]
        self.users.add.side_effect = DuplicateUserError("email taken")

        self.assertEqual(
            self.failure("ada@example.com"), ("oidc_account_exists", "registered meanwhile")
        )
        self.assertEqual(self.users.add.call_count, 1)
        # Looked up again by the address, after the collision.
        self.assertEqual(
            self.users.get_by_email.call_args_list,
            [mock.call("ada@example.com"), mock.call("ada@example.com")],
        )

    def test_new_account_when_every_username_is_taken_gives_up_after_five(self):
        self.users.add.side_effect = DuplicateUserError("username taken")

        self.assertEqual(
            self.failure("ada@example.com"), ("oidc_account_exists", "no free username")
        )
        tried = [call.args[0].username for call in self.users.add.call_args_list]
        self.assertEqual(tried[0], "ada")
        self.assertEqual(len(tried), 5)
        self.assertTrue(all(re.fullmatch(r"ada-[0-9a-f]{6}", name) for name in tried[1:]))
        self.repository.add_identity.assert_not_called()


class TestRaces(NewAccountTestCase):
    def test_sign_in_when_the_account_changed_before_the_session_is_refused(self):
        self.auth.start_session.return_value = None  # deactivated or re-keyed meanwhile

        self.assertEqual(
            self.failure("ada@example.com"), ("oidc_inactive", "the account changed meanwhile")
        )

    def test_sign_in_when_the_identity_was_linked_meanwhile_is_refused(self):
        self.repository.add_identity.side_effect = DuplicateIdentityError()

        self.assertEqual(
            self.failure("ada@example.com"), ("oidc_linked_elsewhere", "linked meanwhile")
        )
        self.auth.start_session.assert_not_called()


class TestLink(NewAccountTestCase):
    def link(self, email: str | None) -> str:
        """Link ``sub-1`` (with ``email``) to Ada; the notice she is sent."""
        self.users.get.return_value = User(id=7, email="ada@example.com", username="ada")
        self.users.get.return_value.is_active = True
        self.provider.identity.return_value = ProviderIdentity("sub-1", email, email is not None)
        pending = Pending("example", "nonce", "verifier", "/account/linked", 7)
        self.service.complete(pending, code="c", iss=None, client=ClientInfo())
        (to, subject, what), kwargs = self.service.outbox.queue_notice.call_args
        self.assertEqual(
            (to, subject, kwargs),
            ("ada@example.com", "An account was linked to yours", {"kind": "oidc_linked"}),
        )
        return what

    def test_link_notice_when_the_provider_gives_an_email_names_the_account_by_it(self):
        self.assertEqual(
            self.link("ada@provider.example"),
            "Your example account (ada@provider.example) can now sign in to your account.",
        )

    def test_link_notice_when_the_provider_gives_no_email_names_the_account_by_subject(self):
        self.assertEqual(
            self.link(None), "Your example account (sub-1) can now sign in to your account."
        )

    def test_link_when_the_provider_gives_no_email_links_without_one(self):
        self.users.get.return_value = User(id=7, email="ada@example.com", username="ada")
        self.users.get.return_value.is_active = True
        self.provider.identity.return_value = ProviderIdentity("sub-1", None, False)
        pending = Pending("example", "nonce", "verifier", "/account/linked", 7)

        self.service.complete(pending, code="c", iss=None, client=ClientInfo())

        (identity,) = self.repository.add_identity.call_args.args
        self.assertEqual((identity.user_id, identity.subject, identity.email), (7, "sub-1", None))
