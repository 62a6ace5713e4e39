"""Schema building blocks shared by every domain."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields


class Text(fields.String):
    """A string that refuses NUL characters.

    PostgreSQL cannot store or even compare text containing NUL (the driver raises),
    so it must be a validation error, on every database alike. Passwords too: no
    keyboard types NUL, and one rule for every string is simpler to trust.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        value = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in value:
            raise ValidationError("Must not contain NUL characters.")
        return value
