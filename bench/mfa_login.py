"""Two-step login (password, then a TOTP code) against a password-only login, on a
running server, from one Python client with the same concurrency for both.

wrk cannot compute TOTP codes, so this driver does both kinds of login itself:
the ratio compares like with like. Each user's code is accepted once per 30-second
step (replay protection), so the two-step logins rotate over a pool of enrolled
users, each using the steps of its window in ascending order.
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
from myapp.auth.factors import TOTP_PERIOD, totp_code  # noqa: E402

THREADS = 16  # as wrk's connections


@dataclass
class EnrolledUser:
    email: str
    secret: str
    last_step: int  # the step of the last code accepted (confirmation's, at first)


@dataclass
class Pool:
    """Enrolled users, handed out with a code for a step they have not used."""

    users: list[EnrolledUser]
    lock: threading.Lock = field(default_factory=threading.Lock)
    waits: int = 0  # times no user had an unused step: the measurement would be too low
    _next: int = 0

    def take(self) -> tuple[str, str]:
        while True:
            with self.lock:
                now = int(time.time()) // TOTP_PERIOD
                for _ in range(len(self.users)):
                    user = self.users[self._next]
                    self._next = (self._next + 1) % len(self.users)
                    # One step either side of now is accepted; use them in order.
                    step = max(user.last_step + 1, now - 1)
                    if step <= now + 1:
                        user.last_step = step
                        return user.email, totp_code(user.secret, step)
                self.waits += 1
            time.sleep(0.05)


def enrol_users(base: str, count: int, password: str) -> Pool:
    """``count`` new users with TOTP on (registered, logged in, enrolled)."""

    def one(n: int) -> EnrolledUser:
        email = f"mfa{n}@bench.example"
        body = {"email": email, "username": f"mfa{n}", "password": password}
        assert call(base, "POST", "/api/v1/auth/register", body)[0] == 201
        status, tokens = call(
            base, "POST", "/api/v1/auth/login", {"email": email, "password": password}
        )
        assert status == 200, tokens
        token = tokens["access_token"]
        secret = call(base, "POST", "/api/v1/auth/mfa/totp/setup", None, token)[1]["secret"]
        step = int(time.time()) // TOTP_PERIOD
        confirm = {"code": totp_code(secret, step)}
        assert call(base, "POST", "/api/v1/auth/mfa/totp/confirm", confirm, token)[0] == 200
        return EnrolledUser(email, secret, step)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return Pool(list(pool.map(one, range(count))))


def password_login(base: str, email: str, password: str) -> None:
    status, body = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})
    assert status == 200 and "access_token" in body, (status, body)


def two_step_login(base: str, pool: Pool, password: str) -> None:
    email, code = pool.take()
    status, body = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})
    assert status == 200 and body.get("mfa_required"), (status, body)
    second = {"mfa_token": body["mfa_token"], "code": code}
    status, body = call(base, "POST", "/api/v1/auth/login/mfa", second)
    assert status == 200 and "access_token" in body, (status, body)


def load(operation, duration: float) -> tuple[float, float, float]:
    """(operations/s, p50 ms, p99 ms) of ``operation`` run by THREADS threads."""
    deadline = time.perf_counter() + duration
    latencies: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            operation()
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(worker) for _ in range(THREADS)]:
            future.result()
    elapsed = time.perf_counter() - started  # includes the operations still in flight
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies), p99


def measure(
    base: str, email: str, password: str, *, users: int, runs: int, duration: int
) -> dict[str, list[tuple[float, float, float]]]:
    """{"login (Python client)": [...], "login + TOTP code": [...]}, round by round."""
    pool = enrol_users(base, users, password)
    kinds = {
        "login (Python client)": lambda: password_login(base, email, password),
        "login + TOTP code": lambda: two_step_login(base, pool, password),
    }
    for operation in kinds.values():
        load(operation, 1)  # warm-up
    rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in kinds}
    for _ in range(runs):
        for name, operation in kinds.items():
            rounds[name].append(load(operation, duration))
    if pool.waits:
        print(
            f"warning: two-step login waited for a fresh code {pool.waits} times", file=sys.stderr
        )
    return rounds
