"""The OpenAPI side of the API: the problem schema, error responses, helpers.

Every error response is documented as ``application/problem+json`` with
``ProblemSchema``; routes list the statuses they can answer with ``problems``.
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from flask import Request
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

from myapp.errors import PROBLEM_MIMETYPE

F = TypeVar("F", bound=Callable[..., Any])


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Unprocessable Entity"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(required=True)
    request_id = fields.String(
        metadata={"description": "The request's X-Request-ID, also in the logs."}
    )
    errors = fields.Dict(
        metadata={
            "description": "For 400/422: messages by location (json, query) and field.",
            "example": {"json": {"email": ["Not a valid email address."]}},
        }
    )


class Api(flask_smorest.Api):
    """flask-smorest's Api, with every error response documented as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
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


def problems(blp: flask_smorest.Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document the error statuses a view can answer, each as a problem+json body."""

    def decorate(view: F) -> F:
        for status in statuses:
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return decorate


class JSONBodyParser(FlaskParser):
    """webargs' Flask parser, strict about what a JSON body is.

    - A body endpoint called without a JSON Content-Type gets 415 (webargs would
      treat the body as absent and answer "missing field" 422s, which misleads).
    - JSON nested deeper than the interpreter can recurse is a 400 like any other
      malformed JSON (the stdlib decoder raises RecursionError: a 500 otherwise).
    """

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            raise UnsupportedMediaType(
                "Send the request body as JSON with 'Content-Type: application/json'."
            )
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "<body>", 0) from None


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the strict JSON parser; a JSON body endpoint
    documents its 400 (malformed JSON) and 415 (not JSON) answers by itself."""

    ARGUMENTS_PARSER = JSONBodyParser()

    def arguments(
        self, schema: type[Schema] | Schema, *, location: str = "json", **kwargs: Any
    ) -> Callable[[F], F]:
        parse: Callable[[F], F] = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return parse

        def decorate(view: F) -> F:
            return problems(self, 400, 415)(parse(view))

        return decorate
