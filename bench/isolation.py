"""Test-isolation cost: the suite's rollback isolation against recreating the schema
for every test, on SQLite and PostgreSQL; each "test" makes one request.

    python bench/isolation.py [--tests 300]      (part of make bench)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests package: its isolation is what is measured

from sqlalchemy.engine import make_url  # noqa: E402

from myapp import create_app  # noqa: E402
from myapp.extensions import db  # noqa: E402
from tests.support.database import (  # noqa: E402
    RequestScopedClient,
    TestDatabase,
    isolated_database,
)

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/myapp_bench_isolation"


def one_request(client) -> None:
    response = client.get("/api/v1/users/me")
    assert response.status_code == 401


def per_test_ms(app, tests: int, isolate) -> float:
    timings = []
    with app.app_context():
        client = app.test_client()
        for _ in range(tests):
            started = time.perf_counter()
            isolate(client)
            timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def rollback(client) -> None:
    with isolated_database():
        one_request(client)


def drop_create(client) -> None:
    db.create_all()
    one_request(client)
    db.session.remove()
    db.drop_all()


def bare(client) -> None:
    one_request(client)


def measure(kind: str, tests: int) -> dict[str, float]:
    if kind == "postgresql":
        database = TestDatabase(make_url(os.environ.get("BENCH_ISOLATION_URL", PG_URL)))
    else:
        database = TestDatabase(make_url("sqlite://"))
    database.create()
    try:
        app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": database.uri})
        app.test_client_class = RequestScopedClient
        with app.app_context():
            db.create_all()
        base = per_test_ms(app, tests, bare)
        results = {
            "request alone": base,
            "rollback isolation": per_test_ms(app, tests, rollback),
        }
        with app.app_context():
            db.drop_all()
        results["drop/create schema"] = per_test_ms(app, tests, drop_create)
        with app.app_context():
            db.engine.dispose()
        return results
    finally:
        database.drop()


def table(tests: int) -> list[str]:
    """Markdown rows: per-test medians over ``tests`` one-request tests."""
    lines = [
        "| database | request alone | with rollback isolation | with drop/create | "
        "isolation overhead | drop/create overhead : isolation overhead |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in ("sqlite", "postgresql"):
        r = measure(kind, tests)
        overhead = r["rollback isolation"] - r["request alone"]
        recreate = r["drop/create schema"] - r["request alone"]
        lines.append(
            f"| {kind} | {r['request alone']:.2f} ms | {r['rollback isolation']:.2f} ms | "
            f"{r['drop/create schema']:.2f} ms | {overhead:.2f} ms | "
            f"{recreate / max(overhead, 0.001):.0f}x |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=300)
    print("\n".join(table(parser.parse_args().tests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
