from marshmallow import Schema, fields

from myapp.openapi import Blueprint

blp = Blueprint("health", __name__, description="Liveness.")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


@blp.route("/health")
@blp.response(200, HealthSchema)
def health():
    """Liveness probe: the process answers. Touches no database, by design."""
    return {"status": "ok"}
