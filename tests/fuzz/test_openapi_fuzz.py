"""Schemathesis: every operation, generated from the OpenAPI document, called
in-process as a normal user and as an administrator.

Bounded by the Hypothesis profile ("suite": quick; `make fuzz`: long campaign).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode, checks

from tests.factories import AdminFactory, UserFactory
from tests.support.database import get_test_app

# A short run per operation in the suite; `make fuzz` sets HYPOTHESIS_PROFILE=fuzz.
FUZZ_EXAMPLES = 300 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 12

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


# The suite's app gives the document to generate from. Each call goes to the test's
# `app` (passed explicitly), inside its rolled-back transaction: a pytest session
# run again in the same process (mutmut does) has a new app, and the one bound here
# would be the last session's, its database gone.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_test_app())
# Valid and invalid inputs alike; NUL characters included (PostgreSQL's trap). The
# bearer header is the test's to give (a real user's), not generated: a negative case
# "without Authorization" would otherwise be sent with it and wrongly flagged.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    allow_x00=True,
    max_examples=FUZZ_EXAMPLES,
    with_security_parameters=False,
)


@pytest.fixture
def user_bearer(auth):
    return auth.headers_for(UserFactory())


@pytest.fixture
def admin_bearer(auth):
    return auth.headers_for(AdminFactory())


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=list(HealthCheck))
def test_operation_when_fuzzed_as_user_conforms_to_its_contract(app, case, user_bearer):
    case.call_and_validate(app=app, headers=user_bearer, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=list(HealthCheck))
def test_operation_when_fuzzed_as_admin_conforms_to_its_contract(app, case, admin_bearer):
    case.call_and_validate(app=app, headers=admin_bearer, checks=CHECKS)
