"""``myapp.openapi``'s helpers, on a blueprint built inside each test: what
``problems`` and ``Blueprint.arguments`` document, and what the strict JSON parser
accepts. (The app's own blueprints apply them at import, before any test could
change them: these tests are what checks the helpers themselves.)"""

from __future__ import annotations

import pytest
from flask import Flask
from marshmallow import Schema, fields

from myapp.openapi import Api, Blueprint, problems


class ThingSchema(Schema):
    name = fields.String(required=True)


@pytest.fixture
def api() -> tuple[Flask, Api]:
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    blp = Blueprint("things", __name__)

    @blp.route("/things", methods=["POST"])
    @problems(blp, 404, 409)
    @blp.arguments(ThingSchema)
    @blp.response(201, ThingSchema)
    def create(data):
        return data

    @blp.route("/things", methods=["GET"])
    # Keyword options reach flask-smorest: as_kwargs hands the fields over one by one.
    @blp.arguments(ThingSchema, location="query", as_kwargs=True)
    @blp.response(200, ThingSchema)
    def find(name):
        return {"name": name}

    api.register_blueprint(blp)
    return app, api


def responses(api: Api, method: str) -> dict[str, str]:
    operation = api.spec.to_dict()["paths"]["/things"][method]
    return {
        status: response.get("$ref", "")
        for status, response in operation["responses"].items()
        if status != "default"
    }


class TestDocumentedProblems:
    def test_json_body_route_when_documented_lists_its_problems_and_parsing_failures(self, api):
        _, spec = api

        assert responses(spec, "post") == {
            "201": "",
            "400": "#/components/responses/BAD_REQUEST",
            "404": "#/components/responses/NOT_FOUND",
            "409": "#/components/responses/CONFLICT",
            "415": "#/components/responses/UNSUPPORTED_MEDIA_TYPE",
            "422": "#/components/responses/UNPROCESSABLE_ENTITY",
        }

    def test_query_route_when_documented_has_no_body_failures(self, api):
        _, spec = api

        assert responses(spec, "get") == {
            "200": "",
            "422": "#/components/responses/UNPROCESSABLE_ENTITY",
        }

    def test_error_responses_when_documented_are_problem_json_with_their_phrase(self, api):
        _, spec = api

        components = spec.spec.to_dict()["components"]["responses"]

        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        assert components == {
            "BAD_REQUEST": {"description": "Bad Request", "content": problem},
            "NOT_FOUND": {"description": "Not Found", "content": problem},
            "CONFLICT": {"description": "Conflict", "content": problem},
            "UNSUPPORTED_MEDIA_TYPE": {"description": "Unsupported Media Type", "content": problem},
            "UNPROCESSABLE_ENTITY": {"description": "Unprocessable Entity", "content": problem},
            "DEFAULT_ERROR": {
                "description": "Any other error (405, 413, 500, ...)",
                "content": problem,
            },
        }


class TestParsing:
    def test_json_body_when_sent_as_json_is_parsed(self, api):
        app, _ = api

        response = app.test_client().post("/things", json={"name": "a"})

        assert (response.status_code, response.get_json()) == (201, {"name": "a"})

    def test_json_body_when_not_sent_as_json_is_415(self, api):
        app, _ = api

        response = app.test_client().post("/things", data='{"name": "a"}')

        assert response.status_code == 415

    def test_query_when_given_is_parsed_from_the_query_string(self, api):
        app, _ = api

        response = app.test_client().get("/things?name=b")

        assert (response.status_code, response.get_json()) == (200, {"name": "b"})
