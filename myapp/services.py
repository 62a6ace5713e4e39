"""Wiring: build each service with its collaborators for the current app.

Routes call these; tests of the service layer build services with mocks instead.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from myapp.auth.account import AccountService, AccountSettings
from myapp.auth.repository import ActionTokenRepository, SessionRepository
from myapp.auth.service import AuthService
from myapp.auth.tokens import TokenService
from myapp.extensions import mail, passwords
from myapp.users.repository import UserRepository
from myapp.users.service import UserService


def account_service() -> AccountService:
    config = current_app.config
    return AccountService(
        UserRepository(),
        SessionRepository(),
        ActionTokenRepository(),
        passwords,
        mail.service,
        AccountSettings(
            base_url=config["APP_BASE_URL"].rstrip("/"),
            reset_lifetime=timedelta(seconds=config["PASSWORD_RESET_TOKEN_EXPIRES"]),
            verification_lifetime=timedelta(seconds=config["EMAIL_VERIFICATION_TOKEN_EXPIRES"]),
        ),
    )


def auth_service() -> AuthService:
    return AuthService(
        UserRepository(),
        SessionRepository(),
        passwords,
        TokenService(),
        account_service(),
        session_lifetime=current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
    )


def user_service() -> UserService:
    return UserService(UserRepository(), SessionRepository(), passwords, account_service())
