"""Two-factor sign-in's HTTP API: the user's own factors under ``/auth/mfa``, and
the administrators' reset under ``/users/<id>/mfa``. Thin views, as elsewhere."""

from __future__ import annotations

from typing import Any

from flask_jwt_extended import current_user, jwt_required

from myapp.access import BEARER, admin_required, current_session_id, require_fresh_token
from myapp.auth.mfa import MfaService, MfaStatus, Proof, TotpSetup
from myapp.auth.schemas import (
    MfaStatusSchema,
    RecoveryCodesSchema,
    SecondFactorSchema,
    TotpConfirmSchema,
    TotpSetupSchema,
)
from myapp.openapi import Blueprint, problems
from myapp.ratelimit import per_user

MFA_CHANGES_MESSAGE = "Too many new secrets or recovery codes; try again later."

blp = Blueprint(
    "mfa",
    __name__,
    url_prefix="/api/v1",
    description="Two-factor sign-in: authenticator apps (TOTP) and recovery codes.",
)


@blp.route("/auth/mfa")
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(200, MfaStatusSchema)
@jwt_required()
def mfa_status() -> MfaStatus:
    """Whether two-factor sign-in is on, and how many recovery codes are left."""
    return MfaService.from_app().status(current_user)


# Enrolling and removing factors need a fresh token: a stolen refreshed session
# must not be able to plant its own authenticator, or remove the owner's.
@blp.route("/auth/mfa/totp/setup", methods=["POST"])
@problems(blp, 401, 409, 429)
@blp.doc(security=BEARER)
@blp.response(200, TotpSetupSchema)
@jwt_required(fresh=True)
@per_user("RATELIMIT_MFA_CHANGES", MFA_CHANGES_MESSAGE)
def totp_setup() -> TotpSetup:
    """Start (or restart) enrolling an authenticator app.

    Returns its secret as text, as an ``otpauth://`` URI and as a QR code. Sign-in
    is unchanged until confirmed. 409 when it is already on.
    """
    return MfaService.from_app().start_totp(current_user)


@blp.route("/auth/mfa/totp/confirm", methods=["POST"])
@problems(blp, 400, 401, 409, 422, 429)
@blp.doc(security=BEARER)
@blp.arguments(TotpConfirmSchema)
@blp.response(200, RecoveryCodesSchema)
@jwt_required(fresh=True)
def totp_confirm(data: dict[str, str]) -> dict[str, list[str]]:
    """Turn two-factor sign-in on with a code from the app.

    Returns 10 recovery codes, shown this once. A wrong code is 400 and the
    enrolment stays pending.
    """
    return {"recovery_codes": MfaService.from_app().confirm_totp(current_user, data["code"])}


@blp.route("/auth/mfa/totp", methods=["DELETE"])
@problems(blp, 401, 403, 409, 422, 429)
@blp.doc(security=BEARER)
@blp.arguments(SecondFactorSchema)
@blp.response(204)
@jwt_required(fresh=True)
def totp_disable(data: dict[str, Any]) -> None:
    """Turn two-factor sign-in off with a current code or a recovery code.

    The recovery codes go too, every other session ends, the owner is emailed.
    A wrong code is 403.
    """
    MfaService.from_app().disable_totp(
        current_user,
        Proof(data.get("code"), data.get("recovery_code")),
        keep_session=current_session_id(),
    )


@blp.route("/auth/mfa/recovery-codes", methods=["POST"])
@problems(blp, 401, 409, 429)
@blp.doc(security=BEARER)
@blp.response(200, RecoveryCodesSchema)
@jwt_required(fresh=True)
@per_user("RATELIMIT_MFA_CHANGES", MFA_CHANGES_MESSAGE)
def regenerate_recovery_codes() -> dict[str, list[str]]:
    """A new set of 10 recovery codes; the old set stops working.

    Only while two-factor sign-in is on (409 otherwise).
    """
    return {"recovery_codes": MfaService.from_app().regenerate_recovery_codes(current_user)}


@blp.route("/users/<int:user_id>/mfa", methods=["DELETE"])
@problems(blp, 401, 403, 404, 409)
@blp.doc(security=BEARER)
@blp.response(204)
@admin_required
def admin_reset_mfa(user_id: int) -> None:
    """Remove a user's second factor (administrators only, fresh token).

    For a lost phone: their sessions end and they are emailed. 409 when they have
    none.
    """
    require_fresh_token()
    MfaService.from_app().admin_reset(current_user, user_id)
