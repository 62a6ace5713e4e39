"""Serving benchmark: myapp under gunicorn, loaded by wrk, on PostgreSQL and SQLite.

Starts and stops its own servers, creates, seeds and drops its own databases,
prints a table of requests/s and latencies with the ratios the performance issue
sets targets on (bench/run.py puts it into docs/performance.md). Traffic stays on 127.0.0.1.

    python bench/serve.py [--users 100000] [--duration 10] [--runs 3]   (make bench)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import argon2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench import flows, mfa_login  # noqa: E402
from bench.common import Gunicorn, Uvicorn, call, cpu_seconds, postgres_database  # noqa: E402
from myapp.signing_keys import new_key_set, write_key_set  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/myapp_bench"
CONNECTIONS = 16
# Sync workers, one per core: see "Worker models" in bench/NOTES.md.
WORKERS = os.cpu_count() or 1
PASSWORD = "benchmark password 42"
SORTS = ("created_at", "-created_at", "email", "-email", "username", "-username")
# Users with TOTP on for the two-step login: each code is accepted once per user and
# 30-second step, so the logins rotate over this many (33 logins/s sustained).
MFA_USERS = 1000


class Database:
    """A benchmark database of one kind, with the schema and seeded users."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        if kind == "postgresql":
            self.url = make_url(os.environ.get("BENCH_DATABASE_URL", PG_URL))
            postgres_database(self.url, create=True)
        else:
            self.url = make_url(f"sqlite:///{workdir / 'bench.db'}")
        self.uri = self.url.render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.kind == "postgresql":
            postgres_database(self.url, create=False)


def app_env(database: Database) -> dict[str, str]:
    return {
        **os.environ,
        "MYAPP_CONFIG": "development",  # production hashing parameters, real code paths
        "DATABASE_URL": database.uri,
        "SECRET_KEY": secrets.token_hex(32),
        "JWT_SECRET_KEY": secrets.token_hex(32),
        "MYAPP_JWT_ACCESS_TOKEN_EXPIRES": "3600",
        "MYAPP_RATELIMIT_ENABLED": "false",  # one load generator address
        "MYAPP_LOG_LEVEL": "WARNING",
    }


def flask(env, *args, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "myapp:create_app()", *args],
        cwd=ROOT,
        env=env,
        check=True,
        input=stdin,
        text=True,
        capture_output=True,
    )


def prepare(database: Database, users: int) -> dict[str, str]:
    env = app_env(database)
    flask(env, "db", "upgrade")
    flask(env, "seed-users", "--count", str(users), "--fast-hash", "--seed", "7")
    flask(
        env,
        "create-admin",
        "--email",
        "admin@bench.example",
        "--username",
        "benchadmin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    return env


def wrk(
    url: str, duration: int, token: str | None = None, script: Path | None = None, timeout: int = 2
):
    """(requests/s, p50 ms, p99 ms, (app, database, wrk) CPU µs per request) of one
    wrk run. The CPU split says where the 2 cores went: wrk, the servers and
    PostgreSQL share them here, and a ratio moves with all three."""
    command = [
        "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{duration}s",
        f"--timeout={timeout}s",
        "--latency",
    ]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if script:
        command += ["-s", str(script)]
    app_before, database_before = cpu_seconds()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    app_after, database_after = cpu_seconds()
    completed = int(re.search(r"(\d+) requests in", output).group(1)) or 1
    cost = tuple(
        round(seconds * 1e6 / completed)
        for seconds in (
            app_after - app_before,
            database_after - database_before,
            (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime + wrk_before.ru_stime),
        )
    )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:  # reported, not hidden: the table shows requests/s of mixed answers
        print(f"warning: {url}: {errors.group(1)} non-2xx responses under load", file=sys.stderr)
    failures = re.search(r"Socket errors: (.*)", output)
    if failures:  # timeouts and resets are not counted in requests/s
        print(f"warning: {url}: socket errors: {failures.group(1)}", file=sys.stderr)

    def percentile(label):
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", output).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    return rps, percentile("50"), percentile("99"), cost


def measure_rounds(targets: dict[str, tuple[str, dict]], runs: int, duration: int):
    """{name: [(requests/s, p50, p99) per round]} for ``targets`` {name: (url, wrk options)}.

    Every target is warmed up first (caches, pools, the database's buffers), then
    measured once per round, round after round: the machine's speed drifts (a
    shared VM), and a ratio taken within one round compares like with like.
    """

    def run(url, seconds, settle=0, length=1, **options):
        result = wrk(url, seconds * length, **options)
        time.sleep(settle)  # let requests wrk gave up on finish before the next run
        return result

    for url, options in targets.values():
        run(url, 1, **options)
    rounds = {name: [] for name in targets}
    for _ in range(runs):
        for name, (url, options) in targets.items():
            rounds[name].append(run(url, duration, **options))
    return rounds


def median_run(runs: list[tuple]) -> tuple:
    """The run with the median requests/s."""
    return sorted(runs, key=lambda run: run[0])[len(runs) // 2]


def median_ratio(numerator: list[tuple], denominator: list[tuple]) -> float:
    """The median over rounds of one target's requests/s over another's."""
    return statistics.median(a[0] / b[0] for a, b in zip(numerator, denominator, strict=True))


def single_hash_seconds() -> float:
    from myapp.config import DevelopmentConfig as config

    hasher = argon2.PasswordHasher(
        time_cost=config.ARGON2_TIME_COST,
        memory_cost=config.ARGON2_MEMORY_COST,
        parallelism=config.ARGON2_PARALLELISM,
    )
    encoded = hasher.hash(PASSWORD)
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        hasher.verify(encoded, PASSWORD)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def bench_database(kind: str, args, workdir: Path) -> dict[str, list[tuple]]:
    database = Database(kind, workdir)
    try:
        env = prepare(database, args.users)
        server = Gunicorn(
            env, workers=WORKERS, log=os.environ.get("BENCH_SERVER_LOG")
        ).wait_until_up()
        try:
            base = server.base
            user = {"email": "user@bench.example", "username": "benchuser", "password": PASSWORD}
            assert call(base, "POST", "/api/v1/auth/register", user)[0] == 201
            token = call(
                base, "POST", "/api/v1/auth/login", {"email": user["email"], "password": PASSWORD}
            )[1]["access_token"]
            admin = call(
                base,
                "POST",
                "/api/v1/auth/login",
                {"email": "admin@bench.example", "password": PASSWORD},
            )[1]["access_token"]
            login_script = workdir / "login.lua"
            login_script.write_text(
                'wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{json.dumps({'email': user['email'], 'password': PASSWORD})}'\n"
            )
            # The same /me in FastAPI + uvicorn, on the same database with the same
            # token; it idles while the others are measured.
            comparison = Uvicorn("bench.fastapi_me:app", env, workers=WORKERS).wait_until_up()
            # The same app signing EdDSA tokens (a key set file), idle likewise.
            keys = workdir / f"jwks-{database.kind}.json"
            write_key_set(keys, new_key_set("EdDSA"))
            signed_env = {
                **env,
                "MYAPP_JWT_ALGORITHM": "EdDSA",
                "MYAPP_JWT_PRIVATE_KEYS": str(keys),
            }
            signed = Gunicorn(signed_env, workers=WORKERS).wait_until_up()
            eddsa_token = call(
                signed.base,
                "POST",
                "/api/v1/auth/login",
                {"email": user["email"], "password": PASSWORD},
            )[1]["access_token"]
            try:
                targets = {
                    "/health": (f"{base}/health", {}),
                    "/me": (f"{base}/api/v1/users/me", {"token": token}),
                    "FastAPI /me": (f"{comparison.base}/api/v1/users/me", {"token": token}),
                    "/me (EdDSA)": (f"{signed.base}/api/v1/users/me", {"token": eddsa_token}),
                    "JWKS (EdDSA)": (f"{signed.base}/.well-known/jwks.json", {}),
                    # Hash-bound: 16 connections queue for seconds, past wrk's 2 s
                    # default; what is still queued when wrk stops drains in the pause.
                    # Three times as long: at 10 logins/s, a 5 s run's count moves by
                    # 4 % with one login more or less.
                    "login": (
                        f"{base}/api/v1/auth/login",
                        {"script": login_script, "timeout": 30, "settle": 5, "length": 3},
                    ),
                }
                for sort in SORTS:
                    for page in (1, 4000):
                        targets[f"users page {page} sort={sort}"] = (
                            f"{base}/api/v1/users?page={page}&per_page=20&sort={sort}",
                            {"token": admin},
                        )
                rounds = measure_rounds(targets, args.runs, args.duration)
                rounds.update(
                    flows.measure(
                        base, env, user["email"], PASSWORD, runs=args.runs, duration=args.duration
                    )
                )
                rounds.update(
                    mfa_login.measure(
                        base,
                        env,
                        user["email"],
                        PASSWORD,
                        users=MFA_USERS,
                        runs=args.runs,
                        duration=args.duration,
                    )
                )
                return rounds
            finally:
                comparison.stop()
                signed.stop()
        finally:
            server.stop()
    finally:
        database.drop()


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), Python {python}, {platform.system()}"


def report(results: dict, hash_seconds: float, args) -> str:
    cores = os.cpu_count() or 1
    lines = [
        "## Serving",
        "",
        f"gunicorn {WORKERS} sync workers (FastAPI: uvicorn {WORKERS} workers); "
        f"wrk 2 threads, {CONNECTIONS} connections, "
        f"{args.duration} s per run after a 1 s warm-up; {args.runs} rounds, each measuring "
        "every endpoint once in turn; each figure the run with the median requests/s, each "
        "ratio the median over rounds of the ratio within a round; "
        f"{args.users} seeded users (`flask seed-users --fast-hash`).",
        "",
        "CPU per request, in µs, of that run: the app's processes, PostgreSQL's, and wrk's "
        "(they share the cores; `-` for the flows driven from Python).",
        "",
        "| database | endpoint | requests/s | p50 ms | p99 ms | CPU app | CPU database | CPU wrk |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, rows in results.items():
        for name, runs in rows.items():
            rps, p50, p99, *cost = median_run(runs)
            cpu = " | ".join(str(part) for part in cost[0]) if cost else "- | - | -"
            lines.append(f"| {kind} | {name} | {rps:.0f} | {p50:.1f} | {p99:.1f} | {cpu} |")
    lines += [
        "",
        "## Ratios against the targets",
        "",
        "| database | ratio | value | target | met |",
        "|---|---|---:|---:|---|",
    ]
    for kind, rows in results.items():
        me, page1 = rows["/me"], rows["users page 1 sort=created_at"]
        # Every round must reach it ("three consecutive runs"): the lowest counts.
        logins = [run[0] / (cores / hash_seconds) for run in rows["login"]]
        targets = [
            (
                "/me : /health",
                median_ratio(me, rows["/health"]),
                0.40 if kind == "postgresql" else 0.55,
            ),
            (
                "page 4000 : page 1",
                median_ratio(rows["users page 4000 sort=created_at"], page1),
                0.5,
            ),
            ("page 1 : /me", median_ratio(page1, me), 0.5),
            (
                "myapp /me : FastAPI /me",
                median_ratio(me, rows["FastAPI /me"]),
                1.5 if kind == "postgresql" else None,
            ),
            (
                "login : cores / single-hash time, lowest round of "
                + ", ".join(f"{value:.2f}" for value in logins),
                min(logins),
                0.9,
            ),
            # Verifying Ed25519 costs tens of µs more than HMAC: within a tenth.
            ("/me EdDSA : /me HS256", median_ratio(rows["/me (EdDSA)"], me), 0.9),
            # The cookie path adds a CSRF compare, an Origin check and two cookies.
            (
                "refresh by cookie : by header",
                median_ratio(rows["refresh (cookie)"], rows["refresh (header)"]),
                0.9,
            ),
            # Two requests and a signature check, but no password hash: faster.
            (
                "passkey sign-in : password sign-in (one Python client)",
                median_ratio(rows["passkey sign-in"], rows["password sign-in (Python client)"]),
                1.0,
            ),
            # A public document built from a cached key set: close to /health.
            ("JWKS : /health", median_ratio(rows["JWKS (EdDSA)"], rows["/health"]), 0.8),
            (
                "login + TOTP code : login (one Python client)",
                median_ratio(rows["login + TOTP code"], rows["login (Python client)"]),
                0.85,
            ),
        ]
        for name, value, target in targets:
            if target is None:  # measured for comparison, no target set
                lines.append(f"| {kind} | {name} | {value:.2f} | none | - |")
            else:
                lines.append(
                    f"| {kind} | {name} | {value:.2f} | {target:.2f} | "
                    f"{'yes' if value >= target else 'no'} |"
                )
    lines += [
        "",
        f"Single argon2 verification at the production parameters: "
        f"{hash_seconds * 1000:.1f} ms (so {cores / hash_seconds:.1f} logins/s is the "
        f"{cores}-core ceiling).",
        "",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--databases", default="postgresql,sqlite")


def run(args) -> str:
    """Measure and return the serving section of the report (markdown)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    hash_seconds = single_hash_seconds()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for kind in args.databases.split(","):
            results[kind] = bench_database(kind, args, Path(workdir))
    return report(results, hash_seconds, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    print(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
