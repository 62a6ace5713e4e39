"""Mail benchmarks: the worker's throughput to a local SMTP sink (one and two
workers), the time to drain a burst, and the password-reset request's latency for a
known against an unknown address (its timing must not tell them apart).

python bench/mail.py [--messages 2000] [--requests 300]   (PostgreSQL, as production)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import Gunicorn, call, free_port  # noqa: E402
from bench.serve import PASSWORD, WORKERS, Database, app_env, flask  # noqa: E402


class Sink:
    """An SMTP server that only counts what it receives."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        self.count += 1
        return "250 OK"


def mail_env(database: Database, smtp_port: int) -> dict[str, str]:
    return {
        **app_env(database),
        "MYAPP_MAIL_EAGER": "false",  # as in production: requests queue, workers send
        "MYAPP_EMAIL_BACKEND": "smtp",
        "MYAPP_SMTP_HOST": "127.0.0.1",
        "MYAPP_SMTP_PORT": str(smtp_port),
        "MYAPP_SMTP_STARTTLS": "false",
    }


def queue_burst(database: Database, count: int) -> None:
    """``count`` ready messages, inserted at once (the burst a campaign or an outage
    leaves behind)."""
    engine = create_engine(database.url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO email_outbox (recipient, subject, text_body, html_body, kind, "
                    "status, attempts, next_attempt_at, created_at) "
                    "SELECT 'user' || n || '@bench.example', 'Hello', 'Body', '<p>Body</p>', "
                    "'bench', 'pending', 0, now(), now() FROM generate_series(1, :count) n"
                ),
                {"count": count},
            )
    finally:
        engine.dispose()


def drain_seconds(env: dict[str, str], sink: Sink, count: int, workers: int) -> float:
    """Seconds for ``workers`` worker processes to deliver ``count`` queued messages."""
    target = sink.count + count
    command = [sys.executable, "-m", "flask", "--app", "myapp:create_app()", "mail-worker"]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        deadline = started + 600
        while sink.count < target:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"drained {sink.count} of {target} in 600 s")
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def reset_latencies(base: str, known: str, requests: int) -> dict[str, list[float]]:
    """Milliseconds per reset request, known and unknown addresses interleaved."""
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for n in range(requests):
        for kind, email in (("known", known), ("unknown", f"nobody{n}@bench.example")):
            started = time.perf_counter()
            status, _ = call(base, "POST", "/api/v1/auth/password-reset", {"email": email})
            times[kind].append((time.perf_counter() - started) * 1000)
            assert status == 202, status
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(args) -> str:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    with tempfile.TemporaryDirectory() as folder:
        database = Database("postgresql", Path(folder))
        try:
            env = mail_env(database, controller.port)
            flask(env, "db", "upgrade")
            drains = {}
            for workers in (1, 2):
                queue_burst(database, args.messages)
                drains[workers] = drain_seconds(env, sink, args.messages, workers)
            known = {"email": "known@bench.example", "username": "known", "password": PASSWORD}
            server = Gunicorn(env, workers=WORKERS).wait_until_up()
            try:
                assert call(server.base, "POST", "/api/v1/auth/register", known)[0] == 201
                times = reset_latencies(server.base, known["email"], args.requests)
            finally:
                server.stop()
        finally:
            database.drop()
            controller.stop()
    lines = [
        "## Email",
        "",
        f"PostgreSQL; an aiosmtpd sink on 127.0.0.1 that only counts; a burst of "
        f"{args.messages} queued messages drained by `flask mail-worker` processes (one "
        "SMTP connection per message, as the SMTP backend does).",
        "",
        "| workers | drain time | messages/s |",
        "|---:|---:|---:|",
    ]
    for workers, seconds in drains.items():
        lines.append(f"| {workers} | {seconds:.1f} s | {args.messages / seconds:.0f} |")
    # Two workers claim disjoint batches (SKIP LOCKED): on 2 cores they should come
    # close to twice one worker's rate, or the claim is the bottleneck.
    scaling = drains[1] / drains[2]
    lines += [
        "",
        f"2 workers : 1 worker, messages/s: {scaling:.2f} "
        f"(target at least 1.50: {'yes' if scaling >= 1.5 else 'no'}).",
    ]
    ratio = {
        name: percentile(times["known"], q) / percentile(times["unknown"], q)
        for name, q in (("p50", 0.5), ("p99", 0.99))
    }
    lines += [
        "",
        f"Password-reset request, {args.requests} each for a known and an unknown address, "
        f"interleaved, one at a time against gunicorn ({WORKERS} workers, no eager mail):",
        "",
        "| address | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|",
    ]
    for kind in ("known", "unknown"):
        values = times[kind]
        lines.append(
            f"| {kind} | {percentile(values, 0.5):.2f} | {percentile(values, 0.99):.2f} | "
            f"{statistics.fmean(values):.2f} |"
        )
    met = "yes" if max(ratio.values()) <= 1.10 else "no"
    lines += [
        "",
        f"known : unknown: p50 {ratio['p50']:.2f}, p99 {ratio['p99']:.2f} "
        f"(target within 1.10: {met}).",
        "",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=2000, help="burst size to drain")
    parser.add_argument("--requests", type=int, default=300, help="reset requests per kind")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    print(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
