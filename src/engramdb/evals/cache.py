"""An on-disk embedding cache for evaluation runs, which embed the same texts again and again."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..embedders.base import Embedder, Vectors


class CachedEmbedder(Embedder):
    """Wraps an embedder; vectors are kept in a SQLite file keyed by model and text.

    It reports the inner embedder's ``name``, so stores built with it are interchangeable with
    stores built without it.
    """

    def __init__(self, inner: Embedder, path: str | Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.inner_name = inner.name
        self.dim = inner.dim
        self.batch_size = max(inner.batch_size, 256)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS v (key TEXT PRIMARY KEY, vec BLOB)")

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.inner.name}\x00{text}".encode()).hexdigest()

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        keys = [self._key(t) for t in texts]
        marks = ",".join("?" * len(keys))
        found = {
            k: np.frombuffer(v, dtype=np.float32)
            for k, v in self._db.execute(f"SELECT key, vec FROM v WHERE key IN ({marks})", keys)
        }
        missing = [i for i, k in enumerate(keys) if k not in found]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing])
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO v VALUES (?, ?)",
                    [(keys[i], fresh[j].tobytes()) for j, i in enumerate(missing)],
                )
            for j, i in enumerate(missing):
                found[keys[i]] = fresh[j]
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out
