"""The :class:`Memory` facade: every door (library, CLI, server) goes through it."""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import config
from .backends.base import Filter, Row
from .backends.sqlite import SQLiteStore
from .embedders import Embedder, resolve_embedder
from .errors import EmbedderMismatch, InvalidFilter, InvalidInput, MemoryNotFound, MissingScope
from .pipeline import messages as msgs
from .retrieval.fuse import rrf
from .retrieval.pack import pack
from .retrieval.query import analyse
from .retrieval.rerank import rerank
from .temporal import find_time_mentions, parse_timestamp
from .types import HistoryEntry, Hit, MemoryRecord, Page, Scope, Source, TimeMention

_ACTOR = "api"
#: A question about a time window also matches what was said shortly after it ("yesterday I...").
_TIME_SLACK = timedelta(days=2)
#: Searches are CPU-bound (index scans, fusion, reranking in Python): more of them at once than
#: half the cores only makes each wait for the others. On 2 cores, 8 client threads searching
#: 10k memories got 64 searches/s without this gate and the embedder's run lock, 160-180 with
#: them (1 thread: 155-200/s).
_SEARCH_GATE = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))


class Memory:
    """Long-term memory for agents: record conversations, search them, build context.

    Args:
        path: the store file. ``None``: ``engram.db`` in ``ENGRAM_HOME`` or the user data
            directory; ``":memory:"``: a throwaway in-memory store.
        embedder: ``"local"`` (default, bundled, offline), ``"openai:<model>"``, ``"test"`` or an
            :class:`~engramdb.embedders.Embedder` instance.
        reembed: when the store holds vectors of another embedder, re-embed every memory
            instead of refusing to open.
        **settings: any setting of :data:`engramdb.config.SETTINGS` (e.g. ``tenant``).

    Raises:
        EmbedderMismatch: the store was embedded with another model and ``reembed`` is False.
        StoreVersionError: the store was written by a newer engramdb.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: str | Embedder | None = None,
        reembed: bool = False,
        **settings: Any,
    ) -> None:
        if isinstance(embedder, str):
            settings["embedder"] = embedder
        self.settings = config.resolve(settings)
        self.embedder = resolve_embedder(
            embedder if isinstance(embedder, Embedder) else self.settings["embedder"]
        )
        self.tenant: str = self.settings["tenant"]
        self.path = (
            str(path) if path is not None else str(Path(self.settings["home"]) / "engram.db")
        )
        self._store = SQLiteStore(
            self.path, dim=self.embedder.dim, synchronous=self.settings["synchronous"]
        )
        try:
            self._check_embedder(reembed)
        except BaseException:
            self._store.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store. The object cannot be used afterwards."""
        self._store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_embedder(self, reembed: bool) -> None:
        stored = self._store.get_meta("embedder")
        name = self.embedder.name
        if stored is None:
            self._store.set_meta("embedder", name)
            self._store.set_meta("embedder_dim", str(self.embedder.dim))
        elif stored != name:
            if not reembed:
                raise EmbedderMismatch(self.path, stored, name)
            self._reembed()
            self._store.set_meta("embedder", name)
            self._store.set_meta("embedder_dim", str(self.embedder.dim))

    def _reembed(self) -> None:
        for batch in self._store.embed_texts():
            ids = [ident for ident, _ in batch]
            texts = [msgs.embed_key(text) for _, text in batch]
            self._store.replace_vectors(
                ids,
                self.embedder.embed(texts),
                [msgs.embed_hash(self.embedder.name, t) for t in texts],
            )

    def _scope(self, operation: str, user_id: str | None, agent_id: str | None) -> Scope:
        if not user_id and not agent_id:
            raise MissingScope(operation)
        return Scope(self.tenant, user_id or None, agent_id or None)

    # -- write ---------------------------------------------------------------------------------

    def add(
        self,
        messages: msgs.MessageInput | Sequence[msgs.MessageInput],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> builtins.list[str]:
        """Record messages (one turn or a batch) durably; returns their ids in order.

        A message is ``{"role", "content", "name"?, "timestamp"?, "metadata"?}`` or a plain string
        (a user message). ``timestamp`` is when it happened (ISO 8601, datetime or epoch seconds;
        naive means UTC; default: the previous message's in the batch, else now).
        Relative dates in the content ("yesterday") are resolved
        against it and kept. Adding a message identical to one already in the same session
        (role, name, content and timestamp) stores nothing and returns the existing
        id.
        The whole batch is validated first and written in one transaction: on any error nothing
        is stored.

        Raises:
            MissingScope, EmptyContent, UnknownRole, InvalidTimestamp, ContentTooLarge,
            InvalidInput: what was wrong, with what to do.
        """
        scope = self._scope("add", user_id, agent_id)
        prepared = msgs.prepare(
            msgs.normalise(messages),
            scope=scope,
            session_id=session_id,
            metadata=metadata,
            max_chars=self.settings["max_content_chars"],
            now=datetime.now(UTC),
        )
        hashes = [p.row.content_hash for p in prepared]
        previous = self._store.previous_message(
            scope, session_id, prepared[0].row.occurred_at, exclude_hashes=hashes
        )
        prepared = msgs.with_context(prepared, previous)
        known = self._store.existing(scope, [(session_id, h) for h in hashes])
        fresh: dict[str, msgs.Prepared] = {}
        for p in prepared:
            if p.row.content_hash not in known and p.row.content_hash not in fresh:
                fresh[p.row.content_hash] = p
        self._write_new(list(fresh.values()))
        ids = {**known, **{h: p.row.id for h, p in fresh.items()}}
        return [ids[p.row.content_hash] for p in prepared]

    def _write_new(self, prepared: builtins.list[msgs.Prepared]) -> None:
        if not prepared:
            return
        hashes = [msgs.embed_hash(self.embedder.name, p.embed_text) for p in prepared]
        vectors = self._vectors_for([p.embed_text for p in prepared], hashes)
        self._store.insert([p.row for p in prepared], vectors, hashes, _ACTOR)

    def _vectors_for(
        self, texts: builtins.list[str], hashes: builtins.list[str]
    ) -> np.ndarray[Any, Any]:
        cached = self._store.cached_vectors(hashes)
        todo = [i for i, h in enumerate(hashes) if h not in cached]
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        if todo:
            out[todo] = self.embedder.embed([texts[i] for i in todo])
        for i, h in enumerate(hashes):
            if h in cached:
                out[i] = cached[h]
        return out

    def update(
        self, memory_id: str, text: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> MemoryRecord:
        """Correct a memory's text and/or metadata; the previous version stays in history.

        ``metadata`` is merged into the existing metadata; a key set to None is removed.

        Raises:
            MemoryNotFound: no memory has this id.
            InvalidInput: empty text or non-JSON metadata.
        """
        row = self._row(memory_id)
        if text is not None:
            if not text.strip():
                raise InvalidInput(
                    "update() text is empty: give the corrected text, or delete() the memory"
                )
            row.text = text
            when = datetime.fromtimestamp(row.occurred_at, tz=UTC)
            previous = self._store.previous_message(
                row.scope, row.session_id, row.occurred_at, before_id=row.id
            )
            row.index_text = msgs.index_text_for(row.name, text, when, previous)
            row.time_mentions = [msgs.mention_dict(m) for m in find_time_mentions(text, when)]
        if metadata is not None:
            merged = {**row.metadata, **metadata}
            row.metadata = {k: v for k, v in merged.items() if v is not None}
            msgs.check_json(0, row.metadata)
        row.updated_at = datetime.now(UTC).timestamp()
        vector, ehash = None, None
        if text is not None:
            key = msgs.embed_key(row.index_text)
            ehash = msgs.embed_hash(self.embedder.name, key)
            vector = self._vectors_for([key], [ehash])[0]
        self._store.update(row, vector, ehash, _ACTOR)
        if text is not None:
            self._rekey(self._store.following(memory_id, self.tenant))
        return self.get(memory_id)

    def _rekey(self, row: Row | None) -> None:
        """Rebuild a message's index key after the turn before it changed or went away."""
        if row is None:
            return
        when = datetime.fromtimestamp(row.occurred_at, tz=UTC)
        previous = self._store.previous_message(
            row.scope, row.session_id, row.occurred_at, before_id=row.id
        )
        row.index_text = msgs.index_text_for(row.name, row.text, when, previous)
        key = msgs.embed_key(row.index_text)
        ehash = msgs.embed_hash(self.embedder.name, key)
        self._store.reindex(row, self._vectors_for([key], [ehash])[0], ehash)

    def delete(self, memory_id: str) -> None:
        """Delete a memory for good: its text, vector, index entries and history content.

        Raises:
            MemoryNotFound: no memory has this id.
        """
        following = self._store.following(memory_id, self.tenant)
        if self._store.delete([memory_id], self.tenant, _ACTOR) == 0:
            raise MemoryNotFound(memory_id)
        # The next turn's index key quoted the deleted one: rebuild it, or the text survives.
        self._rekey(following)

    def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None) -> int:
        """Delete every memory of a scope for good; returns how many were deleted."""
        return self._store.delete_scope(self._scope("delete_all", user_id, agent_id), _ACTOR)

    # -- read ----------------------------------------------------------------------------------

    def _row(self, memory_id: str) -> Row:
        rows = self._store.get([memory_id], self.tenant)
        if not rows:
            raise MemoryNotFound(memory_id)
        return rows[0]

    def get(self, memory_id: str) -> MemoryRecord:
        """One memory by id, with its sources.

        Raises:
            MemoryNotFound: no memory has this id (in this tenant).
        """
        row = self._row(memory_id)
        return _record(row, self._sources([row])[row.id])

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """A page of a scope's memories in the order they were recorded.

        Pass the returned ``next_cursor`` as ``cursor`` to get the next page; it is None on the
        last page.
        """
        scope = self._scope("list", user_id, agent_id)
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        rows = self._store.list(
            scope, session_id=session_id, kind=kind, limit=limit + 1, after=cursor
        )
        more = len(rows) > limit
        rows = rows[:limit]
        sources = self._sources(rows)
        return Page(
            items=[_record(r, sources[r.id]) for r in rows],
            next_cursor=rows[-1].id if more else None,
        )

    def history(self, memory_id: str) -> builtins.list[HistoryEntry]:
        """Every change of a memory, oldest first (content is redacted after a delete).

        Raises:
            MemoryNotFound: the id has no history in this tenant.
        """
        entries = self._store.history(memory_id, self.tenant)
        if not entries:
            raise MemoryNotFound(memory_id)
        return entries

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 10,
        as_of: datetime | str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> builtins.list[Hit]:
        """The memories of a scope that best answer ``query``, best first.

        Lexical (BM25) and dense candidates are fused by reciprocal rank. ``as_of`` answers as
        if it were then: nothing later is returned, and time words in the query ("last week",
        "in May") are read relative to it. ``filters`` takes ``since``/``until`` (event time),
        ``kinds`` (list) and ``metadata`` (dict of equal values).
        """
        scope = self._scope("search", user_id, agent_id)
        if not query or not query.strip():
            raise InvalidInput("search() query is empty: give the question to answer")
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        moment = datetime.now(UTC) if as_of is None else parse_timestamp(as_of)
        flt = _filter(filters, session_id, moment)
        # Embedding first and outside the gate: a remote embedder waits on the network, and the
        # local one has its own lock.
        qvec = self.embedder.embed_one(query)
        with _SEARCH_GATE:
            q = analyse(query, moment)
            n = max(self.settings["candidates"], limit)
            windows = [flt] if q.time is None else [flt, _narrow(flt, q.time)]
            dense = self._store.dense(scope, qvec, n, windows)
            lists = {"lexical": self._store.lexical(scope, q.terms, n, flt), "dense": dense[0]}
            if q.time is not None:
                lists["time"] = dense[1]
            weights = {"lexical": self.settings["lexical_weight"]}
            fused = rrf(lists, self.settings["rrf_k"], weights)[: max(limit * 2, 50)]
            rows = {r.id: r for r in self._store.get([f[0] for f in fused], self.tenant)}
            return self._hits(rerank(query, q.time, fused, rows)[:limit], rows)

    def _hits(
        self, fused: builtins.list[tuple[str, float, dict[str, int]]], rows: dict[str, Row]
    ) -> builtins.list[Hit]:
        sources = self._sources([rows[f[0]] for f in fused])
        hits = []
        for ident, score, ranks in fused:
            row = rows[ident]
            record = _record(row, sources[ident])
            hits.append(
                Hit(
                    id=ident,
                    text=row.text,
                    kind=row.kind,
                    score=score,
                    occurred_at=record.occurred_at,
                    session_id=row.session_id,
                    metadata=row.metadata,
                    sources=record.sources,
                    role=row.role,
                    name=row.name,
                    time_mentions=record.time_mentions,
                    explain=ranks,
                )
            )
        return hits

    def _sources(self, rows: Sequence[Row]) -> dict[str, builtins.list[Source]]:
        wanted = [s for r in rows for s in r.source_ids]
        by_id = {r.id: r for r in self._store.get(wanted, self.tenant)} if wanted else {}
        out: dict[str, builtins.list[Source]] = {}
        for row in rows:
            if row.kind == "message":
                out[row.id] = [_source(row)]
            else:
                out[row.id] = [_source(by_id[s]) for s in row.source_ids if s in by_id]
        return out

    def context(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        max_tokens: int | None = None,
        as_of: datetime | str | None = None,
    ) -> str:
        """What an LLM needs to answer ``query``: the best memories within ``max_tokens``.

        Memories are chosen by relevance and shown in time order, grouped by session, each with
        the date it was said and any dates it mentions resolved to absolute ones.
        """
        budget = max_tokens if max_tokens is not None else self.settings["context_tokens"]
        if budget < 1:
            raise InvalidInput(f"max_tokens must be at least 1, got {budget}")
        hits = self.search(query, user_id=user_id, agent_id=agent_id, limit=100, as_of=as_of)
        return pack(hits, budget)

    # -- portability -----------------------------------------------------------------------------

    def export(
        self, out: IO[str], *, user_id: str | None = None, agent_id: str | None = None
    ) -> int:
        """Write every memory (or one scope's) as JSON lines; returns how many."""
        from .portable import write_export

        scope = None if not (user_id or agent_id) else self._scope("export", user_id, agent_id)
        return write_export(out, self._store.iter_rows(self.tenant, scope), self.embedder.name)

    def import_records(
        self,
        records: Iterable[Mapping[str, Any]],
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Load records written by :meth:`export`, keeping ids and times; returns how many new."""
        from .portable import rows_from_export

        added = 0
        for rows in rows_from_export(records, self.tenant, batch):
            fresh = [r for r in rows if not self._store.get([r.id], self.tenant)]
            if not fresh:
                continue
            hashes = [msgs.embed_hash(self.embedder.name, r.index_text) for r in fresh]
            self._store.insert(
                fresh, self._vectors_for([r.index_text for r in fresh], hashes), hashes, "import"
            )
            added += len(fresh)
            if progress is not None:
                progress(len(rows))
        return added

    def import_file(
        self,
        path: str | Path,
        *,
        format: str = "auto",
        user_id: str | None = None,
        agent_id: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Import a file; returns how many memories were new.

        Formats: ``engramdb`` (an :meth:`export`), ``jsonl`` (one message a line), ``locomo``,
        ``longmemeval``, ``chatgpt`` (a ChatGPT data export's conversations.json) or ``auto``.
        The given user/agent override the file's own; a file without scopes needs one. Each
        conversation is one transaction: an interrupted import can simply be run again, since
        adds are idempotent.

        Raises:
            ImportFormatError: the file is not in the format (says where and why).
        """
        from . import importers
        from .portable import read_export

        fmt = importers.detect_format(path) if format == "auto" else format
        if fmt == "engramdb":
            return self.import_records(read_export(path), progress=progress)
        before = self._store.stats(self.tenant)["memories"]
        for conv in importers.read(path, fmt):
            uid = user_id or conv.user_id
            aid = agent_id or conv.agent_id
            if not (uid or aid):
                raise MissingScope(f"import of {path}")
            self.add(conv.messages, user_id=uid, agent_id=aid, session_id=conv.session_id)
            if progress is not None:
                progress(len(conv.messages))
        return int(self._store.stats(self.tenant)["memories"]) - int(before)

    def stats(self) -> dict[str, Any]:
        """Counts, sizes and the embedder of the store."""
        return {**self._store.stats(self.tenant), "embedder": self.embedder.name}


def _filter(filters: Mapping[str, Any] | None, session_id: str | None, as_of: datetime) -> Filter:
    filters = dict(filters or {})
    unknown = sorted(set(filters) - {"since", "until", "kinds", "metadata"})
    if unknown:
        raise InvalidFilter(
            f"unknown filter(s) {', '.join(unknown)}: use since, until, kinds "
            "and metadata (e.g. filters={'metadata': {'topic': 'work'}})"
        )
    until = as_of.timestamp() + 1e-3  # as_of itself is included
    if filters.get("until") is not None:
        until = min(until, parse_timestamp(filters["until"]).timestamp())
    since = None if filters.get("since") is None else parse_timestamp(filters["since"]).timestamp()
    meta = filters.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise InvalidFilter("filters['metadata'] must be a dict of key: value")
    kinds = filters.get("kinds")
    if isinstance(kinds, str):
        kinds = [kinds]
    return Filter(
        since=since,
        until=until,
        session_id=session_id,
        kinds=tuple(kinds) if kinds else None,
        metadata=tuple(sorted(meta.items())),
    )


def _narrow(flt: Filter, window: TimeMention) -> Filter:
    since = window.start.timestamp()
    until = (window.end + _TIME_SLACK).timestamp()
    return Filter(
        since=max(since, flt.since or since),
        until=min(until, flt.until or until),
        session_id=flt.session_id,
        kinds=flt.kinds,
        metadata=flt.metadata,
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _mention(d: Mapping[str, Any]) -> TimeMention:
    return TimeMention(
        text=d["text"],
        start=datetime.fromisoformat(d["start"]),
        end=datetime.fromisoformat(d["end"]),
        granularity=d["granularity"],
    )


def _source(row: Row) -> Source:
    return Source(
        id=row.id,
        role=row.role or "",
        name=row.name,
        occurred_at=_dt(row.occurred_at),
        session_id=row.session_id,
        metadata=row.metadata,
    )


def _record(row: Row, sources: builtins.list[Source]) -> MemoryRecord:
    return MemoryRecord(
        id=row.id,
        kind=row.kind,
        text=row.text,
        scope=row.scope,
        session_id=row.session_id,
        role=row.role,
        name=row.name,
        occurred_at=_dt(row.occurred_at),
        recorded_at=_dt(row.recorded_at),
        updated_at=_dt(row.updated_at),
        metadata=row.metadata,
        time_mentions=[_mention(m) for m in row.time_mentions],
        sources=sources,
    )
