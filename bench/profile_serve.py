"""Profile of one endpoint as `make bench` serves it: gunicorn with two sync workers
under wrk, sampled by py-spy in one worker. Prints the CPU each side spent per
request, then where the worker's time went: by function (self time) and through
the steps of the request (inclusive time).

    .venv/bin/python bench/profile_serve.py [--database sqlite] [--endpoint me]
        [--algorithm HS256] [--seconds 10]

py-spy reads another process's memory: it needs root or CAP_SYS_PTRACE.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import serve  # noqa: E402
from bench.common import Gunicorn, call, processes  # noqa: E402
from myapp.signing_keys import new_key_set, write_key_set  # noqa: E402

ENDPOINTS = {
    "health": ("/health", None),
    "me": ("/api/v1/users/me", "user"),
    "page1": ("/api/v1/users?page=1&per_page=20&sort=created_at", "admin"),
}
# The request's steps, outermost first: each line is the share of samples inside it.
STEPS = (
    "SyncWorker.handle (",
    "Flask.wsgi_app (",
    "Flask.full_dispatch_request (",
    "verify_jwt_in_request (",
    "_decode_jwt_from_config (",
    "PyJWS._verify_signature (",
    "load_user (",
    "read_rows (",
    "attach_loaded (",
    "ResponseMixin.response.<locals>.decorator.<locals>.wrapper (",
    "Schema.dump (",
    "_add_response_headers (",
    "Response.write (",
    "close_graceful (",
)


def samples(raw: str) -> tuple[collections.Counter, collections.Counter, int]:
    """(self samples by function, inclusive samples by function, total)."""
    own: collections.Counter = collections.Counter()
    inside: collections.Counter = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inside[frame] += int(count)
    return own, inside, total


def short(frame: str) -> str:
    return re.sub(r"\(.*/(site-packages|python3\.\d+|main)/", "(", frame)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--endpoint", default="me", choices=sorted(ENDPOINTS))
    parser.add_argument("--algorithm", default="HS256", choices=["HS256", "EdDSA", "RS256"])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None or shutil.which("wrk") is None:
        raise SystemExit("needs py-spy (pip install '.[bench]') and wrk (make bench installs it)")

    with tempfile.TemporaryDirectory() as folder:
        database = serve.Database(args.database, Path(folder))
        try:
            env = serve.prepare(database, args.users)
            if args.algorithm != "HS256":
                keys = Path(folder) / "jwks.json"
                write_key_set(keys, new_key_set(args.algorithm))
                env.update(MYAPP_JWT_ALGORITHM=args.algorithm, MYAPP_JWT_PRIVATE_KEYS=str(keys))
            server = Gunicorn(env, workers=serve.WORKERS).wait_until_up()
            try:
                return profile(server, spy, args)
            finally:
                server.stop()
        finally:
            database.drop()


def profile(server: Gunicorn, spy: str, args) -> int:
    base = server.base
    user = {"email": "user@bench.example", "username": "benchuser", "password": serve.PASSWORD}
    call(base, "POST", "/api/v1/auth/register", user)
    emails = {"user": user["email"], "admin": "admin@bench.example"}
    path, who = ENDPOINTS[args.endpoint]
    token = None
    if who:
        login = {"email": emails[who], "password": serve.PASSWORD}
        token = call(base, "POST", "/api/v1/auth/login", login)[1]["access_token"]
    serve.wrk(base + path, 2, token=token)  # warm-up
    worker = next(pid for pid, parent, *_ in processes() if parent == server.process.pid)
    measured: list = []
    load = threading.Thread(
        target=lambda: measured.append(serve.wrk(base + path, args.seconds + 2, token=token))
    )
    load.start()
    raw = Path(tempfile.mkdtemp()) / "profile.txt"
    subprocess.run(
        [spy, "record", "--pid", str(worker), "--duration", str(args.seconds), "--rate", "500"]
        + ["--format", "raw", "--output", str(raw), "--nonblocking"],
        check=True,
        capture_output=True,
    )
    load.join()
    rps, p50, p99, (app, database, wrk) = measured[0]
    print(f"{args.endpoint} on {args.database} ({args.algorithm}): {rps:.0f} requests/s")
    print(f"CPU per request: app {app} µs, PostgreSQL {database} µs, wrk {wrk} µs")
    own, inside, total = samples(raw.read_text())
    shutil.rmtree(raw.parent)
    print(f"\nOne worker, {total} samples. Steps (share of samples inside each):")
    for step in STEPS:
        found = [count for frame, count in inside.items() if frame.startswith(step)]
        if found:
            print(f"  {100 * max(found) / total:5.1f} %  {step.rstrip(' (')}")
    print("\nFunctions by their own time:")
    for frame, count in own.most_common(20):
        print(f"  {100 * count / total:5.1f} %  {short(frame)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
