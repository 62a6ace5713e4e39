"""Property-based tests (Hypothesis): schemas never crash, normalisation is stable,
and letter case never locks anyone out."""

from __future__ import annotations

import itertools

import pytest
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from myapp.auth import schemas as auth_schemas
from myapp.passwords import normalise_password
from myapp.users import schemas as user_schemas
from myapp.users.schemas import normalise_email, normalise_username
from tests.support.database import get_test_app, isolated_test

SCHEMAS = [
    auth_schemas.RegisterSchema,
    auth_schemas.LoginSchema,
    auth_schemas.PasswordResetRequestSchema,
    auth_schemas.PasswordResetConfirmSchema,
    auth_schemas.VerifyEmailSchema,
    user_schemas.PasswordChangeSchema,
    user_schemas.ProfileUpdateSchema,
    user_schemas.AdminUserUpdateSchema,
    user_schemas.AccountDeletionSchema,
    user_schemas.UserListQuerySchema,
]
FIELD_NAMES = sorted({name for schema in SCHEMAS for name in schema().fields})

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=12,
)
# Objects whose keys are the schemas' own field names reach the field validators.
field_objects = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=8)


@pytest.fixture(scope="module")
def app_context():
    with get_test_app().app_context():
        yield


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.__name__)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values | field_objects)
def test_schema_load_when_given_any_json_loads_or_raises_validation_error(
    app_context, schema, value
):
    try:
        result = schema().load(value)
    except ValidationError as error:
        assert error.messages  # a reason is always given
    else:
        assert isinstance(result, dict)


@given(st.text())
def test_normalise_email_when_applied_twice_is_idempotent(value):
    assert normalise_email(normalise_email(value)) == normalise_email(value)


@given(st.text())
def test_normalise_username_when_applied_twice_is_idempotent(value):
    assert normalise_username(normalise_username(value)) == normalise_username(value)


@given(st.text())
def test_normalise_password_when_applied_twice_is_idempotent(value):
    assert normalise_password(normalise_password(value)) == normalise_password(value)


local_parts = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]\Z").filter(
    lambda local: ".." not in local
)
# Not a special-use name (".test", ".local", ...): no mailbox can have one, and the
# registration rightly refuses it.
domains = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,10}[A-Za-z0-9]\.[A-Za-z]{2,6}\Z").filter(
    lambda domain: domain.rsplit(".", 1)[1].lower() not in SPECIAL_USE_DOMAIN_NAMES
)


def recased(text: str, flips: list[bool]) -> str:
    """``text`` with the letter case of the characters marked in ``flips`` swapped."""
    marks = itertools.cycle(flips)
    return "".join(c.swapcase() if next(marks) else c for c in text)


@settings(deadline=None)
@given(
    local=local_parts,
    domain=domains,
    flips=st.lists(st.booleans(), min_size=1, max_size=60),
    other_flips=st.lists(st.booleans(), min_size=1, max_size=60),
)
def test_login_when_email_case_differs_from_registration_succeeds(
    local, domain, flips, other_flips
):
    email = f"{local}@{domain}"
    app = get_test_app()
    with app.app_context(), isolated_test(app):
        client = app.test_client()
        registered = client.post(
            "/api/v1/auth/register",
            json={
                "email": recased(email, flips),
                "username": "caseless",
                "password": "a long password!",
            },
        )
        login = client.post(
            "/api/v1/auth/login",
            json={"email": recased(email, other_flips), "password": "a long password!"},
        )

    assert registered.status_code == 201, registered.get_json()
    assert registered.get_json()["email"] == email.lower()
    assert login.status_code == 200
