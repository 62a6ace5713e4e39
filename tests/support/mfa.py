"""Two-factor sign-in as a test drives it: an authenticator app, and enrolment
through the real endpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from myapp.auth.factors import time_step, totp_code

MFA = "/api/v1/auth/mfa"


class Authenticator:
    """The user's phone: the codes of a secret at the (frozen) current time."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def code(self, steps: int = 0) -> str:
        """The code now, or ``steps`` time steps (30 s each) away."""
        return totp_code(self.secret, time_step(datetime.now(UTC)) + steps)

    def wrong_code(self) -> str:
        """A well-formed code the app would not show anywhere near now."""
        near = {self.code(steps) for steps in range(-3, 4)}
        return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)


@dataclass
class Enrolment:
    authenticator: Authenticator
    recovery_codes: list[str]
    headers: dict[str, str] = field(default_factory=dict)  # the session that enrolled


def enrol(client, headers: dict[str, str], clock) -> Enrolment:
    """Turn TOTP on for the owner of ``headers`` (a fresh token), then move the
    clock to the next time step, so the next code is not a replay of this one."""
    setup = client.post(f"{MFA}/totp/setup", headers=headers)
    assert setup.status_code == 200, setup.get_json()
    authenticator = Authenticator(setup.get_json()["secret"])
    confirm = client.post(
        f"{MFA}/totp/confirm", json={"code": authenticator.code()}, headers=headers
    )
    assert confirm.status_code == 200, confirm.get_json()
    clock.tick(30)
    return Enrolment(authenticator, confirm.get_json()["recovery_codes"], headers)
