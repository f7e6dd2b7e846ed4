"""Storage backends behind one contract (:mod:`.base`), selected by URL or passed as an instance.

``"sqlite:///path/to/file.db"``, a plain path, or ``":memory:"`` open the embedded SQLite store.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidInput, StoreError
from .base import Store, Transaction

__all__ = ["Store", "Transaction", "resolve_store"]


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
        raise StoreError(
            "the PostgreSQL backend is not part of this engramdb yet: use a SQLite path or "
            "sqlite:///path/to/file.db"
        )
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
            "use sqlite:///path/to/file.db or a path"
        )
    from .sqlite import SQLiteStore

    try:
        return SQLiteStore(text, dim=dim, synchronous=synchronous)
    except OSError as exc:  # its folder cannot be made: a file is in the way, no permission
        raise StoreError(f"cannot open {text}: {exc}") from exc
