"""`make bench`: every benchmark, one report, written to docs/performance.md (the
serving and mail sections are printed as soon as they are measured).

python bench/run.py [--users 100000] [--duration 10] [--runs 3] [--tests 300]
                    [--messages 2000] [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench import isolation, mail, serve  # noqa: E402
from bench.common import PGBOUNCER  # noqa: E402

REPORT = ROOT / "docs" / "performance.md"
PG_TESTS = "postgresql+psycopg://postgres@127.0.0.1:5432/myapp_bench_suite"


def suite_seconds(database_url: str, workers: int | None) -> float:
    """Wall time of the whole suite, as a developer's second run sees it: with the
    bytecode and rewritten test modules that the first run cached."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if workers:
        command += ["-n", str(workers)]
    env = {**os.environ, "TEST_DATABASE_URL": database_url}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as the Makefile does
    subprocess.run([*command, "--collect-only"], cwd=ROOT, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if run.returncode != 0:  # a failing suite has no wall time worth reporting: say why
        print(run.stdout[-6000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"the suite failed on {database_url} (workers: {workers})")
    return elapsed


def shown(section: str) -> str:
    """Print a section as soon as it is measured: a later failure keeps it."""
    print(section, flush=True)
    return section


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    serve.add_arguments(parser)
    mail.add_arguments(parser)
    parser.add_argument("--tests", type=int, default=300, help="one-request tests to time")
    args = parser.parse_args()
    # The suite's timing at the end needs PgBouncer: know now, not half an hour in.
    if not (shutil.which("pgbouncer") or Path(PGBOUNCER).exists()):
        raise SystemExit("pgbouncer is not installed: run `make pgbouncer` (make bench does)")

    sections = [
        "# Performance",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {serve.machine()}, by "
        f"`python bench/run.py --users {args.users} --duration {args.duration} "
        f"--runs {args.runs} --tests {args.tests} --messages {args.messages} "
        f"--requests {args.requests}` (`make bench`). Absolute numbers on a "
        "shared 2-core machine are noise; the targets are ratios measured in the same run.",
        "",
        shown(serve.run(args)),
        shown(mail.run(args)),
        "## Test isolation",
        "",
        f"Median per test over {args.tests} tests that each make one request.",
        "",
        *isolation.table(args.tests),
        "",
        "## Suite wall time (coverage off)",
        "",
        "| database | serial | `-n 2` |",
        "|---|---:|---:|",
    ]
    for kind, url in (("sqlite", "sqlite://"), ("postgresql", PG_TESTS)):
        serial, parallel = suite_seconds(url, None), suite_seconds(url, 2)
        sections.append(f"| {kind} | {serial:.1f} s | {parallel:.1f} s |")
    sections.append("")
    sections.append((ROOT / "bench" / "NOTES.md").read_text())
    text = "\n".join(sections)
    REPORT.write_text(text + "\n")
    print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
