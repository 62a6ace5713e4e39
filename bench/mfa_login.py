"""Two-step login (password, then a TOTP code) against a password-only login, on a
running server, from one Python client with the same concurrency for both.

wrk cannot compute TOTP codes, so this driver does both kinds of login itself:
the ratio compares like with like. Each user's code is accepted once per 30-second
step (replay protection), so the two-step logins rotate over a pool of enrolled
users (written straight into the database), each using the steps of its window
in ascending order: a pool of N sustains N / 30 s logins.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench.common import call  # noqa: E402
from myapp.auth.factors import TOTP_PERIOD, new_totp_secret, totp_code  # noqa: E402

THREADS = 16  # as wrk's connections


@dataclass
class EnrolledUser:
    email: str
    secret: str
    last_step: int | None = None  # the step of the last code used
    busy: bool = False  # a login of this user is under way

    def code(self) -> str:
        """A code for the earliest step not used yet, from now on: taken just before
        the second request, it stays inside the server's window (the current step
        and one either side) even if a step boundary passes meanwhile."""
        now = int(time.time()) // TOTP_PERIOD
        step = now if self.last_step is None else max(self.last_step + 1, now)
        self.last_step = step
        return totp_code(self.secret, step)


@dataclass
class Pool:
    """Enrolled users, one login at a time each, each with a step left to use."""

    users: list[EnrolledUser]
    lock: threading.Lock = field(default_factory=threading.Lock)
    waits: int = 0  # times no user was free: the measurement would be too low
    _next: int = 0

    def take(self) -> EnrolledUser:
        """A free user whose steps from now on are unused (give it back with ``done``)."""
        while True:
            with self.lock:
                now = int(time.time()) // TOTP_PERIOD
                for _ in range(len(self.users)):
                    user = self.users[self._next]
                    self._next = (self._next + 1) % len(self.users)
                    if not user.busy and (user.last_step is None or user.last_step < now):
                        user.busy = True
                        return user
                self.waits += 1
            time.sleep(0.05)

    def done(self, user: EnrolledUser) -> None:
        with self.lock:
            user.busy = False


def enrol_users(env: dict[str, str], count: int, password: str) -> Pool:
    """``count`` users with TOTP on, written straight into the server's database
    (enrolling through the API costs two password hashes a user: minutes for a
    pool this size). One hash serves them all: the benchmark measures logins."""
    from myapp import create_app
    from myapp.auth.models import TotpCredential
    from myapp.config import DevelopmentConfig
    from myapp.crypto import secret_box
    from myapp.database.columns import utcnow
    from myapp.extensions import db, passwords
    from myapp.users.models import User

    app = create_app(DevelopmentConfig(env))
    users = []
    with app.app_context():
        password_hash = passwords.hash(password)
        box = secret_box()
        now = utcnow()
        for n in range(count):
            secret = new_totp_secret()
            user = User(
                email=f"mfa{n}@bench.example",
                username=f"mfa{n}",
                password_hash=password_hash,
                is_verified=True,
                is_mfa_enabled=True,
            )
            db.session.add(user)
            db.session.flush()
            db.session.add(
                TotpCredential(
                    user_id=user.id,
                    secret_encrypted=box.encrypt(secret),
                    created_at=now,
                    confirmed_at=now,
                )
            )
            users.append(EnrolledUser(user.email, secret))
        db.session.commit()
        db.engine.dispose()
    return Pool(users)


def password_login(base: str, email: str, password: str) -> None:
    status, body = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})
    assert status == 200 and "access_token" in body, (status, body)


def two_step_login(base: str, pool: Pool, password: str) -> None:
    user = pool.take()
    try:
        body = {"email": user.email, "password": password}
        status, answer = call(base, "POST", "/api/v1/auth/login", body)
        assert status == 200 and answer.get("mfa_required"), (status, answer)
        second = {"mfa_token": answer["mfa_token"], "code": user.code()}
        status, answer = call(base, "POST", "/api/v1/auth/login/mfa", second)
        assert status == 200 and "access_token" in answer, (status, answer)
    finally:
        pool.done(user)


def load(operation, duration: float) -> tuple[float, float, float]:
    """(operations/s, p50 ms, p99 ms) of ``operation`` run by THREADS threads."""
    deadline = time.perf_counter() + duration
    latencies: list[float] = []
    lock = threading.Lock()

    failures: list[str] = []

    def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                operation()
            except AssertionError as error:  # counted and reported, like wrk's non-2xx
                with lock:
                    failures.append(str(error))
                continue
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(worker) for _ in range(THREADS)]:
            future.result()
    elapsed = time.perf_counter() - started  # includes the operations still in flight
    if failures:
        print(f"warning: {len(failures)} failed logins, e.g. {failures[0]}", file=sys.stderr)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies), p99


def in_rounds(kinds: dict, runs: int, duration: int) -> dict[str, list[tuple[float, float, float]]]:
    """{name: [(operations/s, p50, p99) per round]}: each kind warmed up, then every
    kind once per round, in turn, so that all see the same machine."""
    for operation in kinds.values():
        load(operation, 1)  # warm-up
    rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in kinds}
    for _ in range(runs):
        for name, operation in kinds.items():
            rounds[name].append(load(operation, duration))
    return rounds


def measure(
    base: str,
    env: dict[str, str],
    email: str,
    password: str,
    *,
    users: int,
    runs: int,
    duration: int,
) -> dict[str, list[tuple[float, float, float]]]:
    """{"login (Python client)": [...], "login + TOTP code": [...]}, round by round."""
    pool = enrol_users(env, users, password)
    kinds = {
        "login (Python client)": lambda: password_login(base, email, password),
        "login + TOTP code": lambda: two_step_login(base, pool, password),
    }
    rounds = in_rounds(kinds, runs, duration)
    if pool.waits:
        print(
            f"warning: two-step login waited for a fresh code {pool.waits} times", file=sys.stderr
        )
    return rounds
