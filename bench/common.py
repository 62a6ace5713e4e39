"""What the benchmark scripts and the multi-process tests share: a free port, a
JSON HTTP call, a gunicorn process, PostgreSQL databases to create and drop, and
PgBouncer in front of them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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


_TICK = 1 / os.sysconf("SC_CLK_TCK")


def processes() -> list[tuple[int, int, str, float]]:
    """(pid, parent pid, command name, CPU seconds used) of every live process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # Fields 4, 14 and 15 of proc(5): parent pid, user and system time in ticks.
        cpu = (int(fields[11]) + int(fields[12])) * _TICK
        found.append((int(entry.name), int(fields[1]), name, cpu))
    return found


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by (this process's descendants: the servers it
    started, and PostgreSQL's processes): read before and after a load, the
    difference is what serving it cost each side (Linux only)."""
    running = processes()
    children: dict[int, list[int]] = {}
    for pid, parent, _, _ in running:
        children.setdefault(parent, []).append(pid)
    mine, stack = set(), [os.getpid()]
    while stack:
        for child in children.get(stack.pop(), []):
            mine.add(child)
            stack.append(child)
    app = sum(cpu for pid, _, _, cpu in running if pid in mine)
    database = sum(cpu for pid, _, name, cpu in running if name == "postgres" and pid not in mine)
    return app, database


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


PGBOUNCER = "/usr/sbin/pgbouncer"  # Debian's package (make pgbouncer installs it)


class PgBouncer:
    """PgBouncer in transaction mode on 127.0.0.1, in front of the PostgreSQL at
    127.0.0.1:5432, for any database name; stopped by ``stop``."""

    def __init__(self, pool_size: int = 10) -> None:
        binary = shutil.which("pgbouncer") or PGBOUNCER
        if not Path(binary).exists():
            raise RuntimeError("pgbouncer is not installed: run `make pgbouncer`")
        self.port = free_port()
        # Its own folder, readable by the user it drops to when started as root
        # (PgBouncer refuses to run as root).
        self.folder = Path(tempfile.mkdtemp(prefix="myapp-pgbouncer-"))
        self.folder.chmod(0o755)
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            "* = host=127.0.0.1 port=5432 user=postgres\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = any\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 500\n"
            # psycopg sends these at connect; PgBouncer would refuse unknown ones.
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\n"
        )
        command = [binary]
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            command += ["-u", "postgres"]
        self.process = subprocess.Popen(
            [*command, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_until_up()

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.process.stderr.read().decode()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("pgbouncer did not start within 10 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)
