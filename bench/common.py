"""What the benchmark scripts and the multi-process tests share: a free port, a
JSON HTTP call, a gunicorn process, and PostgreSQL databases to create and drop."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base: str, method: str, path: str, body=None, token: str | None = None):
    """(status, parsed JSON or None). A refused or reset connection is status 0."""
    request = urllib.request.Request(base + path, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except OSError:
        return 0, None


def postgres_database(url, *, create: bool) -> None:
    """Drop the database of ``url`` (if it exists), then create it when asked."""
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = connection.dialect.identifier_preparer.quote(url.database)
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            if create:
                connection.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()


class Server:
    """A server process on 127.0.0.1 (``{port}`` in its command), always stoppable."""

    def __init__(self, command: list[str], env: dict[str, str], log: str | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # Open for the server's whole life, closed in stop(): no with-block fits.
        self._log = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [part.format(port=self.port) for part in command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def wait_until_up(self, timeout: float = 30, path: str = "/health") -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.process.args[2]} exited with {self.process.returncode}")
            if call(self.base, "GET", path)[0] != 0:  # any HTTP answer: it is serving
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.process.args[2]} did not start")

    def call(self, method: str, path: str, body=None, token: str | None = None):
        return call(self.base, method, path, body, token)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()


class Gunicorn(Server):
    """The app under gunicorn with sync workers (the model bench/serve.py chose)."""

    def __init__(self, env: dict[str, str], workers: int = 1, log: str | None = None) -> None:
        super().__init__(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                "127.0.0.1:{port}",
                "myapp:create_app()",
            ],
            env,
            log,
        )


class Uvicorn(Server):
    """An ASGI app under uvicorn (the FastAPI comparison)."""

    def __init__(
        self, app: str, env: dict[str, str], workers: int = 1, log: str | None = None
    ) -> None:
        super().__init__(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--workers",
                str(workers),
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
            log,
        )
