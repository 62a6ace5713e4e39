"""The custom input fields, each built here: what it accepts, the form it passes on,
and how the OpenAPI document describes it (clients generate code from that).

The schemas build their fields once, at import; building them in the test is what
lets these tests see a change to a field's constructor."""

from __future__ import annotations

import pytest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import ValidationError
from webauthn.helpers.structs import AuthenticationCredential, RegistrationCredential

from myapp.auth.models import PASSKEY_NAME_MAX_LENGTH
from myapp.auth.schemas import (
    PasskeyCredential,
    PasskeyName,
    RecoveryCodeField,
    TokenField,
    TotpCode,
)
from myapp.config import Config
from myapp.schemas import Text
from myapp.users.models import EMAIL_MAX_LENGTH
from myapp.users.schemas import (
    USERNAME_PATTERN,
    USERNAME_RULE,
    NewPassword,
    NormalisedEmail,
    Username,
)
from tests.support.passkeys import UNISSUED_ASSERTION, UNISSUED_REGISTRATION


def documented(field) -> dict:
    """The field's property in an OpenAPI 3.1 document."""
    plugin = MarshmallowPlugin()
    APISpec("fields", "1", "3.1.0", plugins=[plugin])
    return plugin.converter.field2property(field)


def errors_of(field, value) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        field.deserialize(value)
    return raised.value.messages


def text_of_length(length: int) -> str:
    return "x" * length


class TestDocumented:
    @pytest.mark.parametrize(
        ("field", "expected"),
        [
            (
                NewPassword,
                # The documented bounds are the enforced ones, as configured by default.
                {
                    "type": "string",
                    "writeOnly": True,
                    "format": "password",
                    "minLength": Config.PASSWORD_MIN_LENGTH,
                    "maxLength": Config.PASSWORD_MAX_LENGTH,
                },
            ),
            (
                NormalisedEmail,
                {
                    "type": "string",
                    "format": "email",
                    "maxLength": EMAIL_MAX_LENGTH,
                    "example": "ada@example.com",
                },
            ),
            (Username, {"type": "string", "pattern": USERNAME_PATTERN, "example": "ada"}),
            (TotpCode, {"type": "string", "example": "123456"}),
            (
                RecoveryCodeField,
                {"type": "string", "minLength": 1, "maxLength": 64, "example": "7KQ4-MZ2H-XWT9"},
            ),
            (
                PasskeyName,
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": PASSKEY_NAME_MAX_LENGTH,
                    "example": "Laptop",
                },
            ),
            (TokenField, {"type": "string", "minLength": 1, "maxLength": 256}),
        ],
        ids=lambda value: value.__name__ if isinstance(value, type) else "",
    )
    def test_field_when_documented_states_its_rules_and_example(self, field, expected):
        assert documented(field()) == expected

    @pytest.mark.parametrize(
        ("options", "call"),
        [
            ({}, "navigator.credentials.get"),  # sign-in, unless told
            ({"registration": True}, "navigator.credentials.create"),
        ],
        ids=["sign-in", "registration"],
    )
    def test_passkey_credential_when_documented_names_the_browser_call(self, options, call):
        described = documented(PasskeyCredential(**options))

        assert described["type"] == "object"
        assert described["description"] == (
            f"The PublicKeyCredential from {call}(), as JSON (base64url)."
        )

    @pytest.mark.parametrize(
        "field", [NormalisedEmail, Username, TotpCode, RecoveryCodeField, PasskeyName]
    )
    def test_example_when_sent_is_accepted_as_it_is(self, field):
        made = field()
        example = documented(made)["example"]

        assert made.deserialize(example) == example


class TestLengths:
    @pytest.mark.parametrize(
        ("field", "longest"),
        [(RecoveryCodeField, 64), (PasskeyName, PASSKEY_NAME_MAX_LENGTH), (TokenField, 256)],
        ids=["recovery code", "passkey name", "token"],
    )
    def test_text_when_at_its_bounds_is_accepted_and_beyond_them_refused(self, field, longest):
        made = field()

        assert made.deserialize(text_of_length(longest)) == text_of_length(longest)
        assert made.deserialize("x") == "x"
        assert errors_of(made, text_of_length(longest + 1)) == [
            f"Length must be between 1 and {longest}."
        ]
        assert errors_of(made, "") == [f"Length must be between 1 and {longest}."]


class TestAccepted:
    def test_email_when_email_validator_accepts_it_is_accepted_whatever_marshmallow_says(self):
        # email-validator is the one judge of syntax: marshmallow's own Email check
        # refuses this internationalised (SMTPUTF8) mailbox.
        assert NormalisedEmail().deserialize("😀@example.com") == "😀@example.com"

    def test_text_when_holding_nul_is_refused_saying_so(self):
        # PostgreSQL cannot store NUL: refused as input, on every database, with a
        # message the client can act on.
        assert errors_of(Text(), "ab\x00c") == ["Must not contain NUL characters."]
        assert Text().deserialize("abc") == "abc"

    def test_username_when_outside_the_pattern_names_the_rule(self):
        assert errors_of(Username(), "ab") == [USERNAME_RULE]

    @pytest.mark.parametrize(
        ("registration", "answer", "kind"),
        [
            (False, UNISSUED_ASSERTION, AuthenticationCredential),
            (True, UNISSUED_REGISTRATION, RegistrationCredential),
        ],
        ids=["sign-in", "registration"],
    )
    def test_passkey_credential_when_of_its_kind_is_parsed(self, registration, answer, kind):
        parsed = PasskeyCredential(registration=registration).deserialize(answer)

        assert isinstance(parsed.credential, kind)

    @pytest.mark.parametrize(
        ("registration", "answer"),
        [(False, UNISSUED_REGISTRATION), (True, UNISSUED_ASSERTION)],
        ids=["registration given to sign-in", "assertion given to registration"],
    )
    def test_passkey_credential_when_of_the_other_kind_is_refused(self, registration, answer):
        (message,) = errors_of(PasskeyCredential(registration=registration), answer)

        assert message.startswith("Not a WebAuthn credential")
