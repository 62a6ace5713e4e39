"""``/.well-known/jwks.json``: the public keys our access tokens are signed with,
for services that verify them on their own (EdDSA or RS256; empty with HS256)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from myapp.openapi import Blueprint
from myapp.signing_keys import public_jwks

JWKS_PATH = "/.well-known/jwks.json"
# Verifiers may keep it a while; a rotation publishes the new key before it signs
# anything only if they refetch on an unknown kid (PyJWKClient does).
JWKS_MAX_AGE = 300

blp = Blueprint("jwks", __name__, description="Public keys of our tokens (JWKS).")


class JwkSetSchema(Schema):
    keys = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "Public JWKs (kty, crv/x or n/e, kid, alg, use): never private."},
    )


@blp.route(JWKS_PATH)
@blp.response(200, JwkSetSchema, headers={"Cache-Control": {"schema": {"type": "string"}}})
def jwks() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The public keys that verify our access and refresh tokens (RFC 7517)."""
    headers = {"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"}
    return public_jwks(), 200, headers
