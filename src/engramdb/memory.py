"""The :class:`Memory` facade: every door (library, CLI, server) goes through it.

It checks arguments and delegates: the ingest pipeline owns episode -> keys -> jobs -> vectors,
the retriever owns candidates -> fusion -> rerank, the store owns storage. Every bad argument is
refused here with a specific error before anything is written.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import config
from . import results as res
from .backends import Store, resolve_store
from .embedders import Embedder, resolve_embedder
from .errors import (
    EmbedderError,
    EmbedderMismatch,
    EngramError,
    IdConflict,
    InvalidFilter,
    InvalidInput,
    MemoryNotFound,
    MissingScope,
    shorten,
)
from .llms import LLM, resolve_llm
from .pipeline import messages as msgs
from .pipeline.consolidate import Consolidator, extractor_for, subject_namer
from .pipeline.ingest import Ingest, ProcessReport
from .pipeline.keys import own_key
from .profile import build as build_profile
from .records import Filter, Keys, Row
from .retrieval.pack import pack
from .retrieval.retriever import Ranking, Retriever, default_gate, known_at
from .temporal import find_time_mentions
from .types import (
    KINDS,
    AgentSummary,
    BatchUpdate,
    Entity,
    HistoryEntry,
    Hit,
    MemoryRecord,
    Page,
    Profile,
    Scope,
    ScopeSummary,
    UserSummary,
)
from .validate import (
    callback_arg,
    choice_arg,
    file_arg,
    flag_arg,
    int_arg,
    is_unicode,
    metadata_arg,
    name_arg,
    text_arg,
)

log = logging.getLogger("engramdb")
_ACTOR = "api"
#: Most results one search or page returns.
MAX_LIMIT = 1000
#: Event ids are 64-bit integers in both stores.
MAX_EVENT_ID = 2**63 - 1
#: Most pending jobs one process() call runs.
MAX_JOBS = 1_000_000_000


class Memory:
    """Long-term memory for agents: record conversations, search them, build context.

    Args:
        path: the store: a file path, ``"sqlite:///path"``, ``":memory:"`` (a throwaway store),
            or ``None`` for ``engram.db`` in ``ENGRAM_HOME`` or the user data directory.
        embedder: ``"local"`` (default, bundled, offline), ``"openai:<model>"``, ``"test"`` or an
            :class:`~engramdb.embedders.Embedder` instance.
        llm: the language model that extracts facts: ``"openai:<model>"``,
            ``"ollama:<model>"``, ``"test"`` or an :class:`~engramdb.llms.LLM` instance; None
            (default) extracts them with the offline rules.
        reembed: when the store holds vectors of another embedder, re-embed every memory
            instead of refusing to open.
        store: a :class:`~engramdb.backends.Store` instance to use instead of ``path``.
        search_gate: bounds how many searches run their CPU work at once (default: one shared
            gate per process, half the cores).
        **settings: any setting of :data:`engramdb.config.SETTINGS` (e.g. ``tenant``).

    Raises:
        EmbedderMismatch: the store was embedded with another model and ``reembed`` is False.
        StoreVersionError: the store was written by a newer engramdb.
        StoreError: the store cannot be opened.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: str | Embedder | None = None,
        llm: str | LLM | None = None,
        reembed: bool = False,
        store: Store | None = None,
        search_gate: AbstractContextManager[Any] | None = None,
        **settings: Any,
    ) -> None:
        if isinstance(embedder, str):
            settings["embedder"] = embedder
        if isinstance(llm, str):
            settings["llm"] = llm
        flag_arg(reembed, "Memory() reembed")
        if search_gate is not None and not isinstance(search_gate, AbstractContextManager):
            raise InvalidInput(
                "Memory() search_gate must be a context manager such as threading.Semaphore(4), "
                f"got {type(search_gate).__name__}"
            )
        self.settings = config.resolve(settings)
        self.embedder = resolve_embedder(
            self.settings["embedder"] if embedder is None or isinstance(embedder, str) else embedder
        )
        self.tenant: str = self.settings["tenant"]
        self._owner = True
        target: str | Path | Store = (
            store
            if store is not None
            else (path if path is not None else Path(self.settings["home"]) / "engram.db")
        )
        self._store = resolve_store(
            target, dim=self.embedder.dim, synchronous=self.settings["synchronous"]
        )
        self.path = getattr(self._store, "path", self._store.url)
        self._ingest = Ingest(self._store, self.embedder)
        try:
            self.llm = resolve_llm(llm if llm is not None and not isinstance(llm, str)
                                   else self.settings["llm"])  # fmt: skip
        except BaseException:
            self._store.close()
            raise
        self._consolidator = Consolidator(
            self._store, self._ingest, extractor_for(self.llm), _ACTOR
        )
        self._retriever = Retriever(
            self._store,
            Ranking(
                candidates=self.settings["candidates"],
                rrf_k=self.settings["rrf_k"],
                weights={"lexical": self.settings["lexical_weight"]},
            ),
            search_gate if search_gate is not None else default_gate(),
        )
        try:
            self._check_embedder(reembed)
        except BaseException:
            self._store.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store. The object cannot be used afterwards. On a view made by
        :meth:`for_tenant` this does nothing: the store belongs to the Memory it came from."""
        if self._owner:
            self._store.close()

    def for_tenant(self, tenant: str) -> Memory:
        """This memory as seen by another tenant: the same store, embedder and LLM, every read
        and write scoped to ``tenant``. Cheap (no I/O); a server makes one per request.

        Raises:
            InvalidInput: ``tenant`` is not a non-empty string.
        """
        name = name_arg(tenant, "for_tenant() tenant")
        if name is None:
            raise InvalidInput("for_tenant() tenant must be a non-empty string, e.g. 'acme'")
        view = copy.copy(self)
        view.tenant = name
        view.settings = {**self.settings, "tenant": name}
        view._owner = False
        return view

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_embedder(self, reembed: bool) -> None:
        stored = self._store.get_meta("embedder")
        name = self.embedder.name
        if stored == name:
            return
        if stored is not None and not reembed:
            raise EmbedderMismatch(self.path, stored, name)
        with self._store.transaction() as tx:
            if stored is not None:
                tx.reset_vectors()
            tx.set_meta("embedder", name)
            tx.set_meta("embedder_dim", str(self.embedder.dim))
        if stored is not None:
            while self._ingest.process(None, 10_000).done:
                pass

    def _scope(self, operation: str, user_id: object, agent_id: object) -> Scope:
        user = name_arg(user_id, f"{operation}() user_id")
        agent = name_arg(agent_id, f"{operation}() agent_id")
        if not user and not agent:
            raise MissingScope(operation)
        return Scope(self.tenant, user, agent)

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

        A message is ``{"role", "content", "name"?, "timestamp"?, "metadata"?, "id"?}`` or a
        plain string (a user message). ``timestamp`` is when it happened: ISO 8601 (naive means
        UTC), an aware ``datetime``, a naive one (local time, as Python reads it) or epoch
        seconds; default: the previous message's in the batch plus a millisecond, else now.
        Relative dates in the content ("yesterday") are resolved against it on the speaker's
        own clock and kept.

        Identity: a message with an ``id`` is stored once under that id; one with a timestamp
        is the same event as a stored one with the same session, role, name, content and
        instant, and returns its id; one without either is always a new event.

        The batch is validated first and its episodes are committed in one transaction before
        anything is derived: on a bad message nothing is stored. Embedding follows; if the
        embedder fails the episodes stay stored and searchable by their words, the failure is
        logged and recorded, and :meth:`process` finishes the work.

        Raises:
            MissingScope, EmptyContent, UnknownRole, InvalidTimestamp, ContentTooLarge,
            IdConflict, InvalidInput: what was wrong, with what to do.
        """
        scope = self._scope("add", user_id, agent_id)
        session = name_arg(session_id, "add() session_id")
        rows = msgs.prepare(
            msgs.normalise(messages),
            scope=scope,
            session_id=session,
            metadata=metadata,
            max_chars=self.settings["max_content_chars"],
            now=datetime.now(UTC),
        )
        mode = self.settings["consolidate"]
        stored = self._ingest.add(rows, _ACTOR, extract=mode != "off")
        if mode == "inline":
            self._consolidate([ident for ident, created in stored if created])
        return [ident for ident, _ in stored]

    def _consolidate(self, ids: Sequence[str]) -> None:
        """Inline fact extraction after a write. The messages are stored already: a failure
        here leaves their extract jobs pending for process(), and the write stands."""
        if not ids:
            return
        try:
            self._consolidator.run(self.tenant, ids)
        except EngramError as exc:
            log.warning(
                "engramdb: fact extraction failed (%s: %s); the messages are stored and "
                "Memory.process() retries it",
                type(exc).__name__,
                exc,
            )

    def update(
        self, memory_id: str, text: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> MemoryRecord:
        """Correct a memory's text and/or metadata; the previous version stays in history.

        ``metadata`` is merged into the existing metadata; a key set to None is removed. The
        turn after a corrected message is re-keyed in the same transaction (its key quoted the
        old text), and the facts extracted from the old text alone are replaced by those of the
        new one.

        Raises:
            MemoryNotFound: no memory has this id.
            InvalidInput: empty, oversized or non-string text; non-JSON metadata.
        """
        ident = self._id(memory_id, "update")
        change = self._change("update()", text, metadata)
        self._after_write(self._apply(ident, change))
        return self.get(ident)

    def update_many(self, changes: Sequence[Mapping[str, Any]]) -> BatchUpdate:
        """Correct several memories: each change is ``{"id", "text"?, "metadata"?}`` as for
        :meth:`update`.

        Every change and every id is checked before anything is written: one unknown id, or one
        bad change, changes nothing. A fact named in the batch whose source message the batch
        corrects (its text) is not edited: the correction replaces it, as it replaces every
        fact of the old text, and the result says so in ``replaced`` rather than failing on a
        fact that is gone. The other changes are applied in the order given.

        Returns:
            The memories changed, as they are after the batch, and the facts replaced.

        Raises:
            MemoryNotFound: an id names no memory of this tenant (nothing was changed).
            InvalidInput: a change is not a dict with an id and text and/or metadata, its text
                or metadata is bad, or there are more than 1000 changes.
        """
        batch = self._batch(changes, "update_many() changes")
        planned = [self._planned(i, change) for i, change in enumerate(batch)]
        rows = self._rows_of([ident for ident, _, _ in planned])
        corrected = {i for i, _, text in planned if text and rows[i].kind == "message"}
        replaced = [
            i for i in dict.fromkeys(i for i, _, _ in planned)
            if rows[i].kind != "message" and corrected.intersection(rows[i].source_ids)
        ]  # fmt: skip
        again: builtins.list[str] = []
        for ident, change, _ in planned:
            if ident not in replaced:
                again += self._apply(ident, change)
        self._after_write(again)
        done = [i for i in dict.fromkeys(i for i, _, _ in planned) if i not in replaced]
        return BatchUpdate(items=self._records(done), replaced=replaced)

    def _planned(self, index: int, change: object) -> tuple[str, Callable[[Row], bool], bool]:
        """A change of :meth:`update_many`, checked: its id, its change and whether it sets
        the text."""
        where = f"update_many() changes[{index}]"
        if not isinstance(change, Mapping):
            raise InvalidInput(
                f"{where} must be a dict such as {{'id': ..., 'text': ...}}, got "
                f"{type(change).__name__}"
            )
        unknown = sorted(_key(k) for k in set(change) - {"id", "text", "metadata"})
        if unknown:
            raise InvalidInput(f"{where} has unknown key(s) {', '.join(unknown)}: use id, text "
                               "and metadata")  # fmt: skip
        ident = change.get("id")
        if not isinstance(ident, str):
            raise InvalidInput(f"{where} needs an 'id': the id of a memory, as a string")
        text = change.get("text")
        apply = self._change(f"{where} (id {shorten(ident, 40)})", text, change.get("metadata"))
        return self._id(ident, "update_many"), apply, text is not None

    def _change(self, where: str, text: object, metadata: object) -> Callable[[Row], bool]:
        """The checked correction of one record, applied in the write transaction; it returns
        whether the text changed.

        Raises:
            InvalidInput: neither text nor metadata, or a bad one.
        """
        if text is None and metadata is None:
            raise InvalidInput(f"{where} needs text=... and/or metadata=...: nothing to change")
        limit = self.settings["max_content_chars"]
        new_text = None if text is None else text_arg(text, f"{where} text", max_chars=limit)
        changes = None if metadata is None else metadata_arg(metadata, f"{where} metadata")

        def change(row: Row) -> bool:
            # Runs inside the write transaction, on the record as it is now.
            if new_text is not None:
                row.text = new_text
                clock = msgs.speaker_clock(row.occurred_at, row.tz_offset)
                row.keys = Keys(own=own_key(row.name, row.text, clock))
                mentions = find_time_mentions(row.text, clock)
                row.time_mentions = [msgs.mention_dict(m) for m in mentions]
            if changes is not None:
                merged = {**row.metadata, **changes}
                row.metadata = metadata_arg(
                    {k: v for k, v in merged.items() if v is not None}, f"{where} metadata"
                )
            row.updated_at = datetime.now(UTC).timestamp()
            return new_text is not None

        return change

    def _apply(self, ident: str, change: Callable[[Row], bool]) -> builtins.list[str]:
        """One correction in its transaction; the messages whose extraction it queued again."""
        rederive = self.settings["consolidate"] != "off"
        return self._ingest.update(self.tenant, ident, change, _ACTOR, rederive=rederive)

    def _after_write(self, again: Sequence[str]) -> None:
        """Inline extraction of what a correction or a delete queued again (if that mode)."""
        if self.settings["consolidate"] == "inline":
            self._consolidate(builtins.list(dict.fromkeys(again)))

    def delete(self, memory_id: str) -> None:
        """Delete a memory for good: its text, keys, vector, jobs and history content.

        The turn after it, whose key quoted it, is re-keyed in the same transaction, and the
        facts derived from it are deleted with it (a fact they had superseded is current
        again), and those facts' other sources are extracted again, so nothing the deleted
        text said survives; entities no remaining memory mentions go too.

        Raises:
            MemoryNotFound: no memory has this id.
        """
        ident = self._id(memory_id, "delete")
        rederive = self.settings["consolidate"] != "off"
        self._after_write(self._ingest.delete(self.tenant, ident, _ACTOR, rederive=rederive))

    def delete_many(self, ids: Sequence[str]) -> builtins.list[str]:
        """Delete several memories for good, each as :meth:`delete` does; returns the ids
        deleted (each once, in the order given).

        Every id is checked first: one unknown id deletes nothing. The facts named are deleted
        before the messages, so that a fact named in the batch stays deleted: deleting its
        source first would extract its other sources again, and bring it back.

        Raises:
            MemoryNotFound: an id names no memory of this tenant (nothing was deleted).
            InvalidInput: ``ids`` is not a list of strings, or holds more than 1000.
        """
        checked = [self._id(i, "delete_many") for i in self._batch(ids, "delete_many() ids")]
        wanted = builtins.list(dict.fromkeys(checked))
        rows = self._rows_of(wanted)
        rederive = self.settings["consolidate"] != "off"
        again: builtins.list[str] = []
        for ident in sorted(wanted, key=lambda i: rows[i].kind == "message"):
            # Deleted meanwhile (by another caller) is what was asked for.
            with contextlib.suppress(MemoryNotFound):
                again += self._ingest.delete(self.tenant, ident, _ACTOR, rederive=rederive)
        gone = set(wanted)
        self._after_write([i for i in again if i not in gone])
        return wanted

    def _batch(self, items: object, where: str) -> builtins.list[Any]:
        """A list of at most :data:`MAX_LIMIT` items (not a str or a dict)."""
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise InvalidInput(f"{where} must be a list, got {type(items).__name__}")
        if len(items) > MAX_LIMIT:
            raise InvalidInput(
                f"{where} holds {len(items)} items; at most {MAX_LIMIT}: split the batch"
            )
        return builtins.list(items)

    def _rows_of(self, ids: Sequence[str]) -> dict[str, Row]:
        """The records of ``ids`` by id.

        Raises:
            MemoryNotFound: the first id (in order) that names no record of this tenant.
        """
        found = {r.id: r for r in self._store.get(self.tenant, ids)} if ids else {}
        missing = next((i for i in ids if i not in found), None)
        if missing is not None:
            raise MemoryNotFound(missing)
        return found

    def _records(self, ids: Sequence[str]) -> builtins.list[MemoryRecord]:
        """The records of ``ids`` with their sources, in that order (gone ones left out)."""
        by_id = {r.id: r for r in self._store.get(self.tenant, ids)} if ids else {}
        rows = [by_id[i] for i in ids if i in by_id]
        sources = self._sources(rows)
        return [res.record(r, sources[r.id]) for r in rows]

    def archive(self, memory_id: str) -> MemoryRecord:
        """Put a memory away without deleting it: it stays stored, listed and in its history,
        but search, context, facts and the profile leave it out until :meth:`unarchive`.
        Archiving an archived memory changes nothing.

        Raises:
            MemoryNotFound: no memory has this id.
        """
        return self._set_archived(memory_id, "archive", datetime.now(UTC).timestamp())

    def unarchive(self, memory_id: str) -> MemoryRecord:
        """Bring an archived memory back into search, context, facts and the profile.

        Raises:
            MemoryNotFound: no memory has this id.
        """
        return self._set_archived(memory_id, "unarchive", None)

    def _set_archived(self, memory_id: str, operation: str, at: float | None) -> MemoryRecord:
        ident = self._id(memory_id, operation)
        with self._store.transaction() as tx:
            tx.set_archived(self.tenant, ident, at, _ACTOR)
        return self.get(ident)

    def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None) -> int:
        """Delete every memory of a scope for good; returns how many were deleted."""
        return self._ingest.delete_scope(self._scope("delete_all", user_id, agent_id), _ACTOR)

    def process(
        self, limit: int = 10_000, *, progress: Callable[[int, int], None] | None = None
    ) -> ProcessReport:
        """Finish pending derived work of this tenant: embedding (e.g. after the embedder was
        down during an ``add``), then fact extraction and reconciliation (deferred, or after the
        LLM failed); returns what was done and what failed again. ``progress(done, total)`` is
        called as extraction advances."""
        limit = int_arg(limit, "process() limit", maximum=MAX_JOBS)
        callback_arg(progress, "process() progress")
        report = self._ingest.process(self.tenant, limit)
        facts = self._consolidator.process(self.tenant, limit, progress)
        report.extracted += facts.messages
        report.facts_added += facts.added
        report.failed += facts.failed
        report.errors += facts.errors
        # Facts added meanwhile were embedded with them; any whose embedding failed is pending.
        return report

    def work(self, worker: str, limit: int = 32, lease_seconds: float = 300.0) -> ProcessReport:
        """Lease up to ``limit`` pending jobs of each kind, of every tenant, and run them: what
        ``engram worker`` repeats. Several workers (processes, machines) may call it at once on
        one store: a leased job is theirs until ``lease_seconds`` pass; a worker that dies
        leaves its jobs to be leased again then. A job's effects and its end are one
        transaction, so no job is ever applied twice. A job that fails stays leased until its
        lease runs out: a failing LLM is retried no faster than that.
        """
        name = name_arg(worker, "work() worker")
        if not name:
            raise InvalidInput("work() worker must name this worker: a non-empty string")
        limit = int_arg(limit, "work() limit", maximum=MAX_LIMIT)
        if (
            isinstance(lease_seconds, bool)
            or not isinstance(lease_seconds, int | float)
            or not 0 < lease_seconds <= 86_400
        ):
            raise InvalidInput(
                f"work() lease_seconds must be a number of seconds above 0 and at most 86400, "
                f"got {shorten(lease_seconds, 40)}"
            )
        until = datetime.now(UTC).timestamp() + lease_seconds
        report = ProcessReport()
        with self._store.transaction() as tx:
            embeds = tx.lease_jobs("embed", limit, name, until)
        for tenant, ids in _by_tenant(embeds).items():
            part = self._ingest.embed(tenant, ids)
            report.done, report.failed = report.done + part.done, report.failed + part.failed
            report.errors += part.errors
        with self._store.transaction() as tx:
            extracts = tx.lease_jobs("extract", limit, name, until)
        for tenant, ids in _by_tenant(extracts).items():
            facts = self._consolidator.run(tenant, ids)
            report.extracted += facts.messages
            report.facts_added += facts.added
            report.failed += facts.failed
            report.errors += facts.errors
        return report

    # -- read ----------------------------------------------------------------------------------

    def _id(self, memory_id: object, operation: str) -> str:
        if not isinstance(memory_id, str):
            raise InvalidInput(
                f"{operation}() memory_id must be a string, an id that add() or list() gave, "
                f"got {type(memory_id).__name__}"
            )
        if not memory_id or not is_unicode(memory_id):  # no memory can have such an id
            raise MemoryNotFound(memory_id)
        return memory_id

    def _row(self, memory_id: object, operation: str) -> Row:
        rows = self._store.get(self.tenant, [self._id(memory_id, operation)])
        if not rows:
            raise MemoryNotFound(memory_id)
        return rows[0]

    def get(self, memory_id: str) -> MemoryRecord:
        """One memory by id, with its sources.

        Raises:
            MemoryNotFound: no memory has this id (in this tenant).
        """
        row = self._row(memory_id, "get")
        return res.record(row, self._sources([row])[row.id])

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        archived: bool | None = None,
    ) -> Page:
        """A page of a scope's memories in the order they were recorded.

        Pass the returned ``next_cursor`` as ``cursor`` to get the next page; it is None on the
        last page. A cursor stays valid when memories are deleted meanwhile. ``archived``: only
        archived memories (True), none (False), or both (None, the default; each record says
        ``archived_at``).

        Raises:
            InvalidCursor: the cursor is not the ``next_cursor`` of this listing.
        """
        scope = self._scope("list", user_id, agent_id)
        flt = Filter(
            session_id=name_arg(session_id, "list() session_id"),
            kinds=None if kind is None else (_kind(kind, "list() kind"),),
            archived=None if archived is None else flag_arg(archived, "list() archived"),
        )
        limit = int_arg(limit, "list() limit", maximum=MAX_LIMIT)
        return self._page(*self._store.list(scope, flt, limit, cursor))

    def timeline(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        since: datetime | str | float | None = None,
        until: datetime | str | float | None = None,
        kind: str | None = "message",
        limit: int = 100,
        cursor: str | None = None,
        archived: bool | None = None,
    ) -> Page:
        """A page of a scope's memories in the order they happened (``occurred_at``; those of
        one instant in the order they were recorded), oldest first.

        ``since`` and ``until`` bound the period, both included (ISO 8601, a datetime or epoch
        seconds). ``kind``: the conversation turns by default; ``"fact"`` for facts (placed at
        the time they became true), None for every kind. ``archived`` as in :meth:`list`. Pass
        the returned ``next_cursor`` as ``cursor`` (with the same arguments) for the next page;
        it is None on the last. A page is read from an index in this order, so it costs the
        same at the start of a scope of a million memories as at its end.

        Raises:
            MissingScope: neither user_id nor agent_id.
            InvalidTimestamp: ``since`` or ``until`` is not a time.
            InvalidInput: ``since`` is after ``until``, a bad limit, session or archived.
            InvalidFilter: ``kind`` is not a kind of record.
            InvalidCursor: the cursor is not the ``next_cursor`` of this timeline (the same
                scope, period and filters).
        """
        scope = self._scope("timeline", user_id, agent_id)
        start = None if since is None else msgs.timestamp_arg(since, "timeline() since")
        end = None if until is None else msgs.timestamp_arg(until, "timeline() until")
        if start is not None and end is not None and start > end:
            raise InvalidInput(
                f"timeline() since ({shorten(since, 40)}) is after until ({shorten(until, 40)}): "
                "give the start of the period first"
            )
        flt = Filter(
            since=start,
            # The store's bound is exclusive; the next float after it includes the instant.
            until=None if end is None else math.nextafter(end, math.inf),
            session_id=name_arg(session_id, "timeline() session_id"),
            kinds=None if kind is None else (_kind(kind, "timeline() kind"),),
            archived=None if archived is None else flag_arg(archived, "timeline() archived"),
        )
        limit = int_arg(limit, "timeline() limit", maximum=MAX_LIMIT)
        return self._page(*self._store.timeline(scope, flt, limit, cursor))

    def _page(self, rows: Sequence[Row], next_cursor: str | None) -> Page:
        sources = self._sources(rows)
        return Page(items=[res.record(r, sources[r.id]) for r in rows], next_cursor=next_cursor)

    def history(self, memory_id: str) -> builtins.list[HistoryEntry]:
        """Every change of a memory, oldest first (content is redacted after a delete).

        Raises:
            MemoryNotFound: the id has no history in this tenant.
        """
        entries = self._store.history(self.tenant, self._id(memory_id, "history"))
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
        include_expired: bool = True,
    ) -> builtins.list[Hit]:
        """The memories of a scope that best answer ``query``, best first.

        Facts distilled from the conversation are ranked with the turns. A fact that holds at
        the moment asked about (now, or ``as_of``) is preferred; one that had ended by then is
        still found, ranked lower, with its ``valid_to`` set (``include_expired=False`` leaves
        those out). With ``as_of``, facts that only became true later are left out.

        Lexical (BM25) and dense candidates are fused by reciprocal rank. ``as_of`` answers as
        if it were then: nothing later is returned, and time words in the query ("last week",
        "in May") are read relative to it. ``filters`` takes ``since``/``until`` (event time),
        ``kinds`` (list) and ``metadata`` (dict of equal values).

        If the embedder fails on the query, the answer comes from the lexical index alone and
        every hit says so in ``explain["degraded"]`` (the failure is logged too).
        """
        scope = self._scope("search", user_id, agent_id)
        text = text_arg(query, "search() query")
        limit = int_arg(limit, "search() limit", maximum=MAX_LIMIT)
        moment = _moment(as_of)
        flt = _filter(filters, name_arg(session_id, "search() session_id"), moment)
        if not flag_arg(include_expired, "search() include_expired"):
            flt = replace(flt, facts_valid_at=moment.timestamp())
        # Embedding first and outside the search gate: a remote embedder waits on the network,
        # and the local one has its own lock.
        vector, degraded = self._query_vector(text)
        found = self._retriever.search(scope, text, vector, moment, limit, flt)
        sources = self._sources([row for row, _, _ in found])
        return [
            # As of a moment, a fact cites only the messages said by then.
            res.hit(row, score, {**ranks, **degraded},
                    [s for s in sources[row.id] if s.occurred_at <= moment])
            for row, score, ranks in found
        ]  # fmt: skip

    def _query_vector(self, text: str) -> tuple[Any, dict[str, str]]:
        """The query's vector; with the embedder down, none, and a note for every hit: search
        then answers from the lexical index alone rather than not at all."""
        try:
            vector = np.asarray(self.embedder.embed_one(text), dtype=np.float32)
            if vector.shape != (self.embedder.dim,) or not np.isfinite(vector).all():
                raise EmbedderError(
                    f"embedder {self.embedder.name} returned a vector of shape {vector.shape} "
                    f"(or non-finite values) for a query, not one of dimension {self.embedder.dim}"
                )
            return vector, {}
        except Exception as exc:  # any embedder failure, local or remote
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "engramdb: the query could not be embedded (%s); lexical results only", error
            )
            return None, {"degraded": f"lexical only, the embedder failed: {error}"}

    def _sources(self, rows: Sequence[Row]) -> dict[str, builtins.list[Any]]:
        wanted = [s for r in rows for s in r.source_ids]
        by_id = {r.id: r for r in self._store.get(self.tenant, wanted)} if wanted else {}
        return res.sources_of(rows, by_id)

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

        The profile comes first (who the user is now), then the facts that answer the query
        (current ones, then past ones with when they stopped being true), then the turns, in
        time order, grouped by session, each with the date and time it was said on the
        speaker's clock and any dates it mentions resolved. With ``as_of`` the profile (which
        is about now) is left out.
        """
        budget = max_tokens if max_tokens is not None else self.settings["context_tokens"]
        budget = int_arg(budget, "context() max_tokens")
        # Checked here as well as in search(), so that an error names context(), as called.
        self._scope("context", user_id, agent_id)
        text_arg(query, "context() query")
        if as_of is not None:
            msgs.timestamp_arg(as_of, "context() as_of")
        hits = self.search(query, user_id=user_id, agent_id=agent_id, limit=100, as_of=as_of)
        core = "" if as_of is not None else self.profile(user_id=user_id, agent_id=agent_id).text
        return pack(hits, budget, core)

    # -- semantic memory -------------------------------------------------------------------------

    def facts(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        include_expired: bool = False,
        as_of: datetime | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """A page of the facts distilled from a scope's conversations, oldest recorded first.

        By default only the facts still true; ``include_expired=True`` adds superseded ones
        (each with ``valid_to``, ``expired_at`` and ``superseded_by``); ``as_of`` gives those
        true at that time instead. Each fact cites its source messages.

        Raises:
            InvalidCursor: the cursor is not the ``next_cursor`` of this listing.
        """
        scope = self._scope("facts", user_id, agent_id)
        expired = flag_arg(include_expired, "facts() include_expired")
        at = None if as_of is None else msgs.timestamp_arg(as_of, "facts() as_of")
        flt = Filter(
            kinds=("fact",),
            current_facts=not expired and at is None,
            facts_valid_at=at,
            archived=False,
        )
        limit = int_arg(limit, "facts() limit", maximum=MAX_LIMIT)
        rows, next_cursor = self._store.list(scope, flt, limit, cursor)
        if at is not None:  # as known then: an end learned later is not shown
            rows = [known_at(r, at) for r in rows]
        sources = self._sources(rows)
        return Page(items=[res.record(r, sources[r.id]) for r in rows], next_cursor=next_cursor)

    def profile(self, *, user_id: str | None = None, agent_id: str | None = None) -> Profile:
        """Core memory: the user's current stable attributes, relationships and preferences,
        each from a current fact with its sources, within the ``profile_chars`` setting.

        Kept current by reconciliation: when a fact is superseded, the profile shows the new
        value at once.
        """
        scope = self._scope("profile", user_id, agent_id)
        rows: builtins.list[Row] = []
        cursor = None
        flt = Filter(kinds=("fact",), current_facts=True, archived=False)
        while True:
            page, cursor = self._store.list(scope, flt, MAX_LIMIT, cursor)
            rows += page
            if cursor is None:
                break
        wanted = [s for r in rows for s in r.source_ids]
        sources = {r.id: r for r in self._store.get(self.tenant, wanted)} if wanted else {}
        namer = subject_namer(scope)
        speakers = {i: namer(r) for i, r in sources.items()}
        return build_profile(scope, rows, sources, speakers, self.settings["profile_chars"])

    def entities(
        self, *, user_id: str | None = None, agent_id: str | None = None, name: str | None = None
    ) -> builtins.list[Entity]:
        """The people, places, organizations, pets and things a scope's memories mention (those
        called ``name``, by name or alias, when given), most mentioned first, each with its
        relation to the user when one was stated ("sister" of "Maya")."""
        scope = self._scope("entities", user_id, agent_id)
        wanted = None if name is None else text_arg(name, "entities() name")
        return self._store.entities(scope, wanted)

    # -- portability -----------------------------------------------------------------------------

    def export(
        self,
        out: IO[str],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        vectors: bool = False,
    ) -> int:
        """Write every memory (or one scope's) as JSON lines; returns how many. With
        ``vectors`` each record carries its vector (base64 float32), which an import into a
        store with the same embedder keeps instead of embedding again."""
        from .portable import write_export

        everyone = user_id is None and agent_id is None
        scope = None if everyone else self._scope("export", user_id, agent_id)
        carried = None
        if flag_arg(vectors, "export() vectors"):
            carried = lambda rows: self._store.vectors(self.tenant, [r.id for r in rows])  # noqa: E731
        return write_export(
            out, self._store.iter_rows(self.tenant, scope), self.embedder.name,
            lambda rows: self._store.mentions(self.tenant, [r.id for r in rows]), carried,
        )  # fmt: skip

    def import_records(
        self,
        records: Iterable[Mapping[str, Any]],
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Load records written by :meth:`export`, keeping ids, times and keys; returns how
        many were new. Records already stored (same id, same content) are skipped, so an
        interrupted import can be run again; the same ids may be imported into another tenant.
        Every record is read and checked first: a malformed one or an id conflict anywhere
        refuses the import before anything is written.

        Raises:
            ImportFormatError: a malformed record (says which).
            IdConflict: an id already names a different memory of this tenant.
        """
        if not isinstance(records, Iterable) or isinstance(records, (str, bytes, Mapping)):
            raise InvalidInput(
                "import_records() records must be a list or iterator of export records (dicts), "
                f"got {type(records).__name__}"
            )
        batch = int_arg(batch, "import_records() batch", maximum=100_000)
        callback_arg(progress, "import_records() progress")
        from .portable import rows_from_export

        numbered = ((f"record {n}", r) for n, r in enumerate(records, start=1))
        # Every record is read and checked before the first batch is written: a malformed
        # record or an id conflict anywhere refuses the whole import, and changes nothing.
        batches = list(rows_from_export(numbered, self.tenant, batch, self.embedder.name))
        self._check_identities(batches)
        return self._import_export(batches, progress)

    def _check_identities(self, batches: Iterable[Sequence[tuple[str, Row]]]) -> None:
        """Refuse an import that would give an id to two different memories: one stored and one
        imported, or two imported.

        Raises:
            IdConflict: naming the record.
        """
        seen: dict[str, tuple[Scope, int]] = {}
        for pairs in batches:
            stored = {r.id: r for r in self._store.get(self.tenant, [r.id for _, r in pairs])}
            for where, row in pairs:
                said = (row.scope, hash((row.text, row.role, row.name)))
                known = stored.get(row.id)
                other = seen.get(row.id) or (
                    None if known is None
                    else (known.scope, hash((known.text, known.role, known.name)))
                )  # fmt: skip
                if other is not None and other[0] != said[0]:
                    raise IdConflict(row.id, f"a memory of another user or agent ({where})")
                if other is not None and other[1] != said[1]:
                    raise IdConflict(row.id, f"a memory with other content ({where})")
                seen.setdefault(row.id, said)

    def _import_export(
        self,
        batches: Iterable[Sequence[tuple[str, Row]]],
        progress: Callable[[int], None] | None,
    ) -> int:
        added = 0
        # A fact is exported where it was created, before the later messages that confirmed it:
        # its sources are linked once every record is in.
        derived: dict[str, builtins.list[str]] = {}
        try:
            for pairs in batches:
                try:
                    new = set(self._ingest.import_rows([row for _, row in pairs], "import"))
                except IdConflict as exc:  # name the record, as for any other bad record
                    where = next((w for w, r in pairs if r.id == exc.memory_id), "the export")
                    raise IdConflict(exc.memory_id, f"{exc.why} ({where})") from exc
                added += len(new)
                derived.update(
                    (r.id, r.source_ids) for _, r in pairs if r.source_ids and r.id in new
                )
                if progress is not None:
                    progress(len(pairs))
        finally:
            # Batches already committed stay (a later one failed): their facts get every
            # source they have.
            self._ingest.link_sources(self.tenant, derived)
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
        messages with timestamps are recognised as already stored.

        Raises:
            ImportFormatError: the file is not in the format (says where and why); a malformed
                file is refused whole, before anything is stored.
            InvalidInput: no such file, or a bad argument.
        """
        from . import importers
        from .portable import read_export, rows_from_export

        source = file_arg(path, "import_file() path")
        fmt = choice_arg(format, "import_file() format", ("auto", *importers.FORMATS))
        user = name_arg(user_id, "import_file() user_id")
        agent = name_arg(agent_id, "import_file() agent_id")
        callback_arg(progress, "import_file() progress")
        fmt = importers.detect_format(source) if fmt == "auto" else fmt
        if fmt == "engramdb":
            # The whole file is checked (format and ids) before anything is written.
            self._check_identities(rows_from_export(read_export(source), self.tenant, 500))
            batches = rows_from_export(read_export(source), self.tenant, 500, self.embedder.name)
            return self._import_export(batches, progress)  # vectors kept
        for _ in self._conversations(source, fmt, user, agent):
            pass  # likewise
        added = 0
        mode = self.settings["consolidate"]
        for rows, count in self._conversations(source, fmt, user, agent):
            stored = self._ingest.add(rows, "import", extract=mode != "off")
            new = [ident for ident, created in stored if created]
            if mode == "inline":  # facts dated by the messages, never the import day
                self._consolidate(new)
            added += len(new)
            if progress is not None:
                progress(count)
        return added

    def _conversations(
        self, path: Path, fmt: str, user_id: str | None, agent_id: str | None
    ) -> Iterator[tuple[builtins.list[Row], int]]:
        """Each conversation of a file as checked rows, and how many messages it had."""
        from . import importers

        for conv in importers.read(path, fmt):
            if not conv.messages:  # e.g. an empty LoCoMo session
                continue
            uid, aid = user_id or conv.user_id, agent_id or conv.agent_id
            if not (uid or aid):
                raise MissingScope("import_file")
            rows = msgs.prepare(
                msgs.normalise(conv.messages),
                scope=self._scope("import_file", uid, aid),
                session_id=name_arg(conv.session_id, f"{path}: session id"),
                metadata=None,
                max_chars=self.settings["max_content_chars"],
                now=datetime.now(UTC),
            )
            yield rows, len(conv.messages)

    # -- tenant administration -------------------------------------------------------------------

    def scopes(self) -> builtins.list[ScopeSummary]:
        """Every user/agent pair of this tenant that holds memories, with its counts."""
        return self._store.scopes(self.tenant)

    def users(self) -> builtins.list[UserSummary]:
        """The users of this tenant, by id, each with how many memories and facts it holds
        over all its agents, those agents, and when its latest memory happened."""
        return [
            UserSummary(user_id=name, memories=sum(s.memories for s in found),
                        facts=sum(s.facts for s in found),
                        agents=_named(s.agent_id for s in found), last_at=_latest(found))
            for name, found in self._grouped(lambda s: s.user_id)
        ]  # fmt: skip

    def agents(self) -> builtins.list[AgentSummary]:
        """The agents of this tenant, by id, each with how many memories and facts it holds
        over all its users (and its own, without a user), those users, and when its latest
        memory happened."""
        return [
            AgentSummary(agent_id=name, memories=sum(s.memories for s in found),
                         facts=sum(s.facts for s in found),
                         users=_named(s.user_id for s in found), last_at=_latest(found))
            for name, found in self._grouped(lambda s: s.agent_id)
        ]  # fmt: skip

    def _grouped(
        self, key: Callable[[ScopeSummary], str | None]
    ) -> builtins.list[tuple[str, builtins.list[ScopeSummary]]]:
        """This tenant's scopes grouped by a name (the user or the agent), by name."""
        groups: dict[str, builtins.list[ScopeSummary]] = {}
        for s in self._store.scopes(self.tenant):
            name = key(s)
            if name is not None:
                groups.setdefault(name, []).append(s)
        return sorted(groups.items())

    def events(self, after: int = 0, limit: int = 100) -> builtins.list[HistoryEntry]:
        """This tenant's changes after event id ``after``, oldest first: an append-only feed
        (``create``, ``update``, ``delete``; for facts ``confirm``, ``supersede``, ...). Pass the
        last id seen as ``after`` to read on. A deleted memory's events keep no content."""
        after = int_arg(after, "events() after", minimum=0, maximum=MAX_EVENT_ID)
        limit = int_arg(limit, "events() limit", maximum=MAX_LIMIT)
        return self._store.events(self.tenant, after, limit)

    def purge_user(self, user_id: str) -> dict[str, int]:
        """Erase a user for good (GDPR): every message, fact, entity, vector, index entry and
        job of the user, with any agent, and the content of their history and events. Returns
        a receipt: how many of each were removed.

        Raises:
            InvalidInput: ``user_id`` is not a non-empty string.
        """
        user = name_arg(user_id, "purge_user() user_id")
        if user is None:
            raise MissingScope("purge_user")
        with self._store.transaction() as tx:
            return tx.purge(self.tenant, user, _ACTOR)

    def purge_tenant(self) -> dict[str, int]:
        """Erase this whole tenant: every scope's records as :meth:`purge_user` does, and its
        API keys, webhooks, delivery log and history. Returns a receipt of what was removed."""
        with self._store.transaction() as tx:
            return tx.purge(self.tenant, None, _ACTOR)

    def stats(self) -> dict[str, Any]:
        """Counts, sizes, pending work and the embedder of the store."""
        return {**self._store.stats(self.tenant), "embedder": self.embedder.name}


def _by_tenant(jobs: Iterable[Any]) -> dict[str, builtins.list[str]]:
    out: dict[str, builtins.list[str]] = {}
    for job in jobs:
        out.setdefault(job.tenant, []).append(job.memory_id)
    return out


def _named(names: Iterable[str | None]) -> builtins.list[str]:
    return sorted({n for n in names if n is not None})


def _latest(scopes: Sequence[ScopeSummary]) -> datetime | None:
    return max((s.last_at for s in scopes if s.last_at is not None), default=None)


def _moment(as_of: object) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(msgs.timestamp_arg(as_of, "search() as_of"), tz=UTC)


def _kind(value: object, where: str) -> str:
    if not isinstance(value, str) or value not in KINDS:
        raise InvalidFilter(
            f"{where} {shorten(value, 40)} is not a kind: use one of {', '.join(KINDS)}"
        )
    return value


def _key(key: object) -> str:
    return key if isinstance(key, str) else shorten(key, 40)


def _filter(filters: object, session_id: str | None, as_of: datetime) -> Filter:
    if filters is None:
        filters = {}
    if not isinstance(filters, Mapping):
        raise InvalidFilter(
            f"filters must be a dict, got {type(filters).__name__}: e.g. "
            "filters={'since': '2024-01-01', 'metadata': {'topic': 'work'}}"
        )
    unknown = sorted(_key(k) for k in set(filters) - {"since", "until", "kinds", "metadata"})
    if unknown:
        raise InvalidFilter(
            f"unknown filter(s) {', '.join(unknown)} in filters: use since, until, kinds "
            "and metadata (e.g. filters={'metadata': {'topic': 'work'}})"
        )
    # as_of and until both include the instant they name (the index bound is exclusive).
    until = as_of.timestamp() + 1e-3
    if filters.get("until") is not None:
        until = min(until, msgs.timestamp_arg(filters["until"], "filters['until']") + 1e-3)
    since = filters.get("since")
    kinds = filters.get("kinds")
    if isinstance(kinds, str):
        kinds = [kinds]
    if kinds is not None and not isinstance(kinds, (list, tuple)):
        raise InvalidFilter(f"filters['kinds'] must be a list of kinds: {', '.join(KINDS)}")
    meta = filters.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        raise InvalidFilter("filters['metadata'] must be a dict of key: value")
    meta = metadata_arg(meta, "filters['metadata']")
    return Filter(
        since=None if since is None else msgs.timestamp_arg(since, "filters['since']"),
        until=until,
        session_id=session_id,
        kinds=None if kinds is None else tuple(_kind(k, "filters['kinds']") for k in kinds),
        metadata=tuple(sorted(meta.items())),
    )
