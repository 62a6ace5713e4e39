"""GET /health"""

from __future__ import annotations


class TestHealth:
    def test_health_when_requested_returns_ok_without_touching_database(
        self, client, sql_statements
    ):
        response = client.get("/health")

        assert response.status_code == 200
        assert response.get_json() == {"status": "ok"}
        assert sql_statements == []

    def test_sql_recorder_when_request_queries_records_statements(
        self, client, auth_headers, sql_statements
    ):
        # The probe above can fail: a request that reads the database is seen.
        client.get("/api/v1/users/me", headers=auth_headers)

        assert any("FROM users" in statement for statement in sql_statements)
