"""Storage backends behind one contract (:mod:`.base`), selected by URL or passed as an instance.

``"sqlite:///path/to/file.db"``, a plain path, or ``":memory:"`` open the embedded SQLite store.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError
from .base import Store, Transaction

__all__ = ["Store", "Transaction", "resolve_store"]


def resolve_store(spec: str | Path | Store, *, dim: int, synchronous: str = "full") -> Store:
    """A store from a URL or path, or the instance itself.

    Raises:
        StoreError: an unknown URL scheme, or a store that cannot be opened.
    """
    if not isinstance(spec, (str, Path)):
        return spec
    text = str(spec)
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

    return SQLiteStore(text, dim=dim, synchronous=synchronous)
