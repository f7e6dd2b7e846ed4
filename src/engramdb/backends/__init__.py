"""Storage backends behind one contract (:mod:`.base`), selected by URL or passed as an instance.

``"sqlite:///path/to/file.db"``, a plain path, or ``":memory:"`` open the embedded SQLite store;
``"postgresql://user:password@host:5432/database"`` the PostgreSQL store (the ``postgres`` extra),
with ``?pool_size=N`` (connections, default 10) and ``?pool_timeout=S`` (seconds a call waits for
one, default 30) read by engramdb and every other parameter passed to libpq.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import InvalidInput, StoreError
from .base import Store, Transaction

__all__ = ["Store", "Transaction", "resolve_store"]

_POOL_SETTINGS = ("pool_size", "pool_timeout")


def resolve_store(spec: str | Path | Store, *, dim: int, synchronous: str = "full") -> Store:
    """A store from a URL or path, or the instance itself.

    Raises:
        StoreError: an unknown URL scheme, or a store that cannot be opened.
        InvalidInput: neither a path, a URL nor a store.
    """
    if not isinstance(spec, str | os.PathLike):
        if not callable(getattr(spec, "transaction", None)):
            raise InvalidInput(
                f"store must be a file path, 'sqlite:///path', ':memory:' or a Store instance "
                f"(path=... or store=...), got {type(spec).__name__}"
            )
        return spec
    text = os.fspath(spec)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InvalidInput(
            f"path {text!r:.60} is not a path: give a file path, 'sqlite:///path' or ':memory:'"
        )
    if text.startswith(("postgresql://", "postgres://")):
        return _postgres(text, dim)
    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://")
        text = text.removeprefix("/") if text.startswith("/:memory:") else text
        if not text:
            raise StoreError(
                "sqlite:// needs a path: sqlite:///path/to/file.db or sqlite://:memory:"
            )
    elif "://" in text:
        raise StoreError(
            f"unknown store URL {text.split('://')[0]}://...: "
            "use sqlite:///path/to/file.db, a path or postgresql://user@host/database"
        )
    from .sqlite import SQLiteStore

    try:
        return SQLiteStore(text, dim=dim, synchronous=synchronous)
    except OSError as exc:  # its folder cannot be made: a file is in the way, no permission
        raise StoreError(f"cannot open {text}: {exc}") from exc


def _postgres(url: str, dim: int) -> Store:
    """The PostgreSQL store of a URL, its pool settings taken out of the query string."""
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise StoreError(
            f"the PostgreSQL store needs its extra: pip install 'engramdb[postgres]' ({exc})"
        ) from exc
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _POOL_SETTINGS}
    rest = urlencode([(k, v) for k, v in query if k not in _POOL_SETTINGS])
    try:
        size = int(ours.get("pool_size", "10"))
        timeout = float(ours.get("pool_timeout", "30"))
    except ValueError as exc:
        raise StoreError(
            f"pool_size must be a whole number and pool_timeout seconds: {exc}"
        ) from exc
    if not 1 <= size <= 1000 or not 0 < timeout <= 3600:
        raise StoreError("pool_size must be 1..1000 and pool_timeout 0..3600 seconds")
    return PostgresStore(
        urlunsplit(parts._replace(query=rest)), dim=dim, pool_size=size, pool_timeout=timeout
    )
