"""The OpenAPI side of the API: the problem schema, error responses, helpers.

Every error response is documented as ``application/problem+json`` with
``ProblemSchema``; routes list the statuses they can answer with ``problems``.
"""

from __future__ import annotations

import http

import flask_smorest
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields

from myapp.errors import PROBLEM_MIMETYPE


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Unprocessable Entity"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(required=True)
    errors = fields.Dict(
        metadata={
            "description": "For 400/422: messages by location (json, query) and field.",
            "example": {"json": {"email": ["Not a valid email address."]}},
        }
    )


class Api(flask_smorest.Api):
    """flask-smorest's Api, with every error response documented as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {
            "description": "Any other error (405, 413, 500, ...)",
            "schema": self.ERROR_SCHEMA,
        }
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def problems(blp: flask_smorest.Blueprint, *statuses: int):
    """Document the error statuses a view can answer, each as a problem+json body."""

    def decorate(view):
        for status in statuses:
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return decorate
