"""A bounded soak: a mixed workload against gunicorn + PostgreSQL.

Several concurrent clients each loop register -> login -> me -> refresh -> me ->
logout for a fixed time. Reports requests, failures (anything but an expected
status, e.g. a 5xx or a dropped connection: must be 0), p50/p99 latency, and checks
the database afterwards (counts match what succeeded, no orphan or stray sessions).
Exits non-zero on any failure. Traffic goes to 127.0.0.1 only.

    python bench/soak.py --duration 60 --clients 8      (make soak)
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench.common import Gunicorn, PgBouncer, call, postgres_database  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/myapp_soak"


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.failures: list[str] = []
        self.done: Counter = Counter()

    def record(self, name: str, status: int, seconds: float, expected: int) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] += 1
            if status != expected:
                self.failures.append(f"{name}: {status} (expected {expected})")
            else:
                self.done[name] += 1


def client_loop(base: str, stats: Stats, deadline: float) -> None:
    while time.monotonic() < deadline:
        name = uuid.uuid4().hex[:16]
        user = {
            "email": f"{name}@soak.example",
            "username": f"u{name}",
            "password": "soak password 123",
        }

        def step(label, expected, method, path, body=None, token=None):
            started = time.perf_counter()
            status, payload = call(base, method, path, body, token)
            stats.record(label, status, time.perf_counter() - started, expected)
            return payload if status == expected else None

        if step("register", 201, "POST", "/api/v1/auth/register", user) is None:
            continue
        credentials = {"email": user["email"], "password": user["password"]}
        tokens = step("login", 200, "POST", "/api/v1/auth/login", credentials)
        if tokens is None:
            continue
        step("me", 200, "GET", "/api/v1/users/me", token=tokens["access_token"])
        rotated = step(
            "refresh", 200, "POST", "/api/v1/auth/refresh", token=tokens["refresh_token"]
        )
        if rotated is None:
            continue
        step("me", 200, "GET", "/api/v1/users/me", token=rotated["access_token"])
        step("logout", 204, "POST", "/api/v1/auth/logout", token=rotated["access_token"])


def check_database(url, stats: Stats) -> list[str]:
    engine = create_engine(url)
    problems = []
    with engine.connect() as connection:

        def scalar(sql):
            return connection.execute(text(sql)).scalar_one()

        users = scalar("SELECT count(*) FROM users")
        sessions = scalar("SELECT count(*) FROM auth_sessions")
        orphans = scalar(
            "SELECT count(*) FROM auth_sessions s LEFT JOIN users u ON u.id = s.user_id "
            "WHERE u.id IS NULL"
        )
        live = scalar("SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL")
    engine.dispose()
    if users != stats.done["register"]:
        problems.append(f"users: {users} rows, {stats.done['register']} registrations")
    if sessions != stats.done["login"]:
        problems.append(f"sessions: {sessions} rows, {stats.done['login']} logins")
    if orphans:
        problems.append(f"{orphans} sessions without a user")
    # Every flow that logged in also logged out, except flows cut by the deadline.
    expected_live = stats.done["login"] - stats.done["logout"]
    if live != expected_live:
        problems.append(f"{live} live sessions, expected {expected_live}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_URL))
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="serve through PgBouncer in transaction mode (make pgbouncer installs it)",
    )
    args = parser.parse_args()

    url = make_url(args.database_url)
    postgres_database(url, create=True)
    uri = url.render_as_string(hide_password=False)
    env = {
        **os.environ,
        "MYAPP_CONFIG": "testing",  # cheap hashing: the soak exercises the app, not argon2
        "SECRET_KEY": secrets.token_urlsafe(32),  # one key for every worker
        "TEST_DATABASE_URL": uri,
        "MYAPP_RATELIMIT_ENABLED": "false",  # one client address; limits are tested elsewhere
        "MYAPP_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "myapp:create_app('testing')", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    bouncer = None
    if args.pgbouncer:
        # Migrations above went straight to PostgreSQL; the app goes through the pooler.
        bouncer = PgBouncer(pool_size=args.workers)
        env["TEST_DATABASE_URL"] = bouncer.url(url.database)
        env["MYAPP_DATABASE_PGBOUNCER"] = "true"
    server = Gunicorn(env, workers=args.workers).wait_until_up()
    base = server.base
    stats = Stats()
    try:
        deadline = time.monotonic() + args.duration
        threads = [
            threading.Thread(target=client_loop, args=(base, stats, deadline))
            for _ in range(args.clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.stop()
        if bouncer is not None:
            bouncer.stop()
    problems = check_database(uri, stats)
    postgres_database(url, create=False)

    total = len(stats.latencies)
    quantiles = statistics.quantiles(stats.latencies, n=100) if total > 1 else [0.0] * 99
    through = " through PgBouncer (transaction mode)" if args.pgbouncer else ""
    print(
        f"soak: {args.clients} clients, {args.workers} gunicorn workers{through}, {elapsed:.1f} s"
    )
    print(f"requests      {total} ({total / elapsed:.0f}/s)")
    print(f"by status     {dict(sorted(stats.statuses.items()))}")
    print(f"completed     {dict(sorted(stats.done.items()))}")
    print(f"latency p50   {quantiles[49] * 1000:.1f} ms")
    print(f"latency p99   {quantiles[98] * 1000:.1f} ms")
    print(f"failures      {len(stats.failures)}")
    for failure in stats.failures[:10]:
        print(f"  {failure}")
    print(f"database      {'consistent' if not problems else '; '.join(problems)}")
    return 1 if stats.failures or problems or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
