"""Registration and login rules. No Flask request objects here: callers pass data."""

from __future__ import annotations

from myapp.auth.tokens import TokenPair, TokenService
from myapp.errors import Conflict, Unauthorized
from myapp.passwords import PasswordHasher
from myapp.users.models import User, normalise_email, normalise_username
from myapp.users.repository import DuplicateUserError, UserRepository


class InvalidCredentials(Unauthorized):
    # One message for unknown user, wrong password and inactive account alike, so
    # the answer never tells an attacker which accounts exist.
    detail = "Invalid credentials"


class AuthService:
    def __init__(
        self, users: UserRepository, passwords: PasswordHasher, tokens: TokenService
    ) -> None:
        self.users = users
        self.passwords = passwords
        self.tokens = tokens

    def register(self, email: str, username: str, password: str) -> User:
        email, username = normalise_email(email), normalise_username(username)
        email_taken, username_taken = self.users.find_conflicts(email, username)
        if email_taken:
            raise Conflict("An account with this email already exists.")
        if username_taken:
            raise Conflict("This username is taken.")
        user = User(email=email, username=username, password_hash=self.passwords.hash(password))
        try:
            return self.users.add(user)
        except DuplicateUserError:
            # Lost a race with a concurrent registration of the same email/username.
            raise Conflict("An account with this email or username already exists.") from None

    def login(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> TokenPair:
        if email is not None:
            user = self.users.get_by_email(normalise_email(email))
        elif username is not None:
            user = self.users.get_by_username(normalise_username(username))
        else:
            raise InvalidCredentials()
        if user is None:
            # Same cost as a real check: response time must not reveal unknown users.
            self.passwords.verify_dummy(password)
            raise InvalidCredentials()
        if not self.passwords.verify(user.password_hash, password) or not user.is_active:
            raise InvalidCredentials()
        if self.passwords.needs_rehash(user.password_hash):
            # Parameters were raised since this hash was made: upgrade it now that
            # we hold the plain password.
            user.password_hash = self.passwords.hash(password)
            self.users.save(user)
        return self.tokens.issue(user, fresh=True)
