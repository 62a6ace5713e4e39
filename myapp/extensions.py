"""Every Flask extension, instantiated once and initialised in ``create_app``."""

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

import jwt as pyjwt
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.tokens import _decode_jwt
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from myapp.mail import Mail
from myapp.openapi import Api
from myapp.passwords import PasswordHasher

# Deterministic constraint names: Alembic can then ALTER/DROP them, on SQLite too.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# The models' base class. Flask-SQLAlchemy builds db.Model from Base at run time;
# type checkers cannot follow that, so they are shown Base (the same mappings).
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate(db=db, render_as_batch=True)  # batch mode: SQLite can't ALTER a table


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header alone, to pick the key by: its one segment decoded (PyJWT's
    helper decodes and checks all three, character by character). Nothing in it is
    trusted: the verified decode that follows checks the whole token."""
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise pyjwt.DecodeError("Invalid header") from None
    if not isinstance(header, dict):
        raise pyjwt.DecodeError("Invalid header")
    return header


class SingleDecodeJWTManager(JWTManager):
    """flask-jwt-extended, decoding each token once per check instead of three times.

    The library decodes the claims without verification, then the header, then
    the whole token verified, only to hand the unverified claims to the key loader.
    Ours choose the key from the header alone (HS256: the secret; EdDSA/RS256: the
    ``kid``), so only the header's segment is read, then the token decoded and
    verified once. The
    checks are the library's own (``_decode_jwt``). A test counts the decodes per
    request: a library upgrade that renames this hook would show there.
    """

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: str | None = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        header = _unverified_header(encoded_token)
        kwargs: dict[str, Any] = {
            "algorithms": jwt_config.decode_algorithms,
            "audience": jwt_config.decode_audience,
            "csrf_value": csrf_value,
            "encoded_token": encoded_token,
            "identity_claim_key": jwt_config.identity_claim_key,
            "issuer": jwt_config.decode_issuer,
            "leeway": jwt_config.leeway,
            "secret": self._decode_key_callback(header, {}),
            "verify_aud": jwt_config.decode_audience is not None,
            "verify_sub": jwt_config.verify_sub,
        }
        try:
            decoded: dict[str, Any] = _decode_jwt(**kwargs, allow_expired=allow_expired)
        except pyjwt.ExpiredSignatureError as error:
            # As the library does: its expired-token handler reads these.
            error.jwt_header = header  # type: ignore[attr-defined]
            error.jwt_data = _decode_jwt(**kwargs, allow_expired=True)  # type: ignore[attr-defined]
            raise
        return decoded


jwt = SingleDecodeJWTManager()
api = Api()
passwords = PasswordHasher()
mail = Mail()
