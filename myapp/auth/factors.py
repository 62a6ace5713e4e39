"""Second-factor primitives: TOTP codes (RFC 6238) and recovery codes.

Pure functions, no database and no Flask: the rules of a code, which the
services apply.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
from datetime import datetime

import pyotp
import segno

# RFC 6238 as every authenticator app implements it: SHA-1, 6 digits, 30 s steps.
TOTP_DIGITS = 6
TOTP_PERIOD = 30
# One step either side: the phone's clock and ours may be half a minute apart.
TOTP_WINDOW = 1

RECOVERY_CODE_COUNT = 10
# No look-alikes: no 0/O, 1/I/L, and no U (which reads as V in some fonts).
RECOVERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
# 12 symbols of 30: 58.9 random bits, above the 50 an online guesser could never
# reach and enough to make an offline search of a leaked hash take years.
RECOVERY_CODE_LENGTH = 12
RECOVERY_GROUP = 4  # shown as XXXX-XXXX-XXXX
_SEPARATORS = re.compile(r"[\s\-_.]+")


def new_totp_secret() -> str:
    """A base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an SVG document (drawn here: the secret never goes to
    a third-party QR service)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


def time_step(moment: datetime) -> int:
    return int(moment.timestamp()) // TOTP_PERIOD


def totp_code(secret: str, step: int) -> str:
    """The code of ``secret`` at time step ``step``."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).generate_otp(step)


def matching_step(secret: str, code: str, now: datetime, *, after: int | None) -> int | None:
    """The time step ``code`` belongs to, within the window around ``now``, if that
    step is later than ``after`` (the last one accepted: replay); else None.

    Newest step first, so a code valid for two steps counts as the later one.
    """
    current = time_step(now)
    for step in range(current + TOTP_WINDOW, current - TOTP_WINDOW - 1, -1):
        if after is not None and step <= after:
            break
        # Constant time: the comparison must not tell how many digits were right.
        if hmac.compare_digest(totp_code(secret, step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """A new set of recovery codes, formatted for people (XXXX-XXXX-XXXX)."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        groups = [raw[i : i + RECOVERY_GROUP] for i in range(0, len(raw), RECOVERY_GROUP)]
        codes.append("-".join(groups))
    return codes


def normalise_recovery_code(code: str) -> str:
    """The code as stored: separators and spaces dropped, upper-cased."""
    return _SEPARATORS.sub("", code).upper()


def recovery_code_hash(user_id: int, code: str) -> str:
    """The stored form of one of the user's codes (given normalised). The user id
    in the digest makes equal codes of two users different rows."""
    return hashlib.sha256(f"{user_id}\n{code}".encode()).hexdigest()
