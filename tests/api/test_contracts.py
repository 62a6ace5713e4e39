"""Every endpoint has a behaviour contract in docs/contracts/."""

from __future__ import annotations

import re
from pathlib import Path

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts"


def contract_name(method: str, rule: str) -> str:
    """``DELETE /api/v1/auth/sessions/<uuid:session_id>`` -> ``delete-auth-sessions-session_id``."""
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"\1", rule.removeprefix("/api/v1"))
    return f"{method.lower()}-{path.strip('/').replace('/', '-')}"


class TestContracts:
    def test_every_endpoint_when_routed_has_a_contract_page_naming_it(self, app):
        missing = []
        for rule in app.url_map.iter_rules():
            if rule.rule == "/api/openapi.json":
                continue
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                page = CONTRACTS / f"{contract_name(method, rule.rule)}.md"
                if not page.exists() or method not in page.read_text().splitlines()[0]:
                    missing.append(f"{method} {rule.rule} -> {page.name}")

        assert missing == []
