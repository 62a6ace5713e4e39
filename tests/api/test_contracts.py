"""docs/contracts/ and the OpenAPI document describe the same endpoints and statuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts"


def contract_name(method: str, path: str) -> str:
    """``delete /api/v1/auth/sessions/{session_id}`` -> ``delete-auth-sessions-session_id``."""
    path = re.sub(r"\{([^}]+)\}", r"\1", path.removeprefix("/api/v1"))
    return f"{method.lower()}-{path.strip('/').replace('/', '-')}"


def contract_statuses(text: str) -> set[str]:
    """Statuses a page names: its Output line and each `NNN` in backticks."""
    return set(re.findall(r"`(\d{3})`", text)) | set(re.findall(r"\*\*Output\*\* (\d{3})", text))


def documented_operations(client):
    document = client.get("/api/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield method, path, {s for s in operation["responses"] if s.isdigit()}


class TestContracts:
    def test_every_documented_endpoint_when_listed_has_a_contract_page(self, client):
        missing = [
            f"{method.upper()} {path}"
            for method, path, _ in documented_operations(client)
            if not (CONTRACTS / f"{contract_name(method, path)}.md").exists()
        ]

        assert missing == []

    def test_contract_statuses_when_compared_match_openapi_responses(self, client):
        mismatches = {}
        for method, path, statuses in documented_operations(client):
            page = CONTRACTS / f"{contract_name(method, path)}.md"
            text = page.read_text()
            assert text.splitlines()[0] == f"# {method.upper()} {path}", page.name
            listed = contract_statuses(text)
            if listed != statuses:
                mismatches[f"{method.upper()} {path}"] = {
                    "only in contract": sorted(listed - statuses),
                    "only in OpenAPI": sorted(statuses - listed),
                }

        assert mismatches == {}

    @pytest.mark.parametrize(
        ("text", "expected"),
        [("**Output** 201: x\n- `409`: taken", {"201", "409"}), ("no statuses", set())],
    )
    def test_contract_statuses_when_parsed_reads_output_and_error_lines(self, text, expected):
        assert contract_statuses(text) == expected
