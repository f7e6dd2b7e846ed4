"""Moving a whole store to another backend (``engram migrate``), losslessly.

Every tenant is carried over as an export with vectors (records, facts with their validity and
sources, entity mentions, archive marks, ids, times and keys; vectors are not computed again),
then its history (the audit log as it was, not the import's own creation events), its pending
fact-extraction work, its API keys (their hashes) and webhook subscriptions. Then the two stores
are compared: the exports of every tenant must be equal, and searches must find the same.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .memory import Memory
from .portable import row_to_dict

_PAGE = 500
#: Queries per tenant that the check runs against both stores.
CHECK_QUERIES = 25


@dataclass
class MigrationReport:
    """What a migration moved, per tenant, and what the check found."""

    tenants: dict[str, dict[str, int]] = field(default_factory=dict)
    exports_equal: bool | None = None
    search_agreement: float | None = None  # mean overlap of the top 5 of both stores
    problems: list[str] = field(default_factory=list)


def migrate(
    source: Memory,
    target: Memory,
    *,
    verify: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> MigrationReport:
    """Copy every tenant of ``source`` into ``target`` (records already there are skipped, so
    an interrupted migration can be run again), then compare them when ``verify``."""
    report = MigrationReport()
    for tenant in source._store.tenants():
        report.tenants[tenant] = _tenant(
            source.for_tenant(tenant), target.for_tenant(tenant), progress
        )
    if verify:
        check(source, target, report)
    return report


def _tenant(
    src: Memory, dst: Memory, progress: Callable[[str, int], None] | None
) -> dict[str, int]:
    tenant = src.tenant
    counted = None if progress is None else (lambda n: progress(tenant, n))
    moved = dst.import_records(_records(src), batch=_PAGE, progress=counted)
    history = _all_events(src)
    pending = [j.memory_id for j in src._store.jobs(tenant, 10**9, "extract")]
    with dst._store.transaction() as tx:
        tx.replace_history(tenant, history)
        tx.requeue(tenant, pending, "extract")
        known = {k.id for k in dst._store.api_keys(tenant)}
        keys = [(k, d) for k, d in src._store.api_key_digests(tenant) if k.id not in known]
        for key, digest in keys:
            tx.insert_key(key, digest)
        hooks = {h.id for h, _ in dst._store.webhooks(tenant)}
        new_hooks = [(h, s) for h, s in src._store.webhooks(tenant) if h.id not in hooks]
        for hook, secret in new_hooks:
            tx.insert_webhook(hook, secret)  # delivery resumes after the newest event
    return {
        "records": moved, "history": len(history), "pending_extractions": len(pending),
        "api_keys": len(keys), "webhooks": len(new_hooks),
    }  # fmt: skip


def _records(src: Memory) -> Iterator[dict[str, Any]]:
    """The tenant's records as export records with their vectors and mentions, a page at a
    time (a store of a million records is never held in memory)."""
    store, tenant = src._store, src.tenant
    rows = store.iter_rows(tenant, None)
    while page := list(itertools.islice(rows, _PAGE)):
        ids = [r.id for r in page]
        mentions, vectors = store.mentions(tenant, ids), store.vectors(tenant, ids)
        for row in page:
            row.mentions = mentions.get(row.id, [])
            row.embedding = vectors.get(row.id)
            yield row_to_dict(row, src.embedder.name)


def _all_events(src: Memory) -> list[Any]:
    events: list[Any] = []
    after = 0
    while batch := src._store.events(src.tenant, after, 10_000):
        events += batch
        after = batch[-1].id
    return events


def check(source: Memory, target: Memory, report: MigrationReport) -> None:
    """Compare every tenant's export, and the searches of a sample of its messages."""
    equal, overlaps = True, list[float]()
    for tenant in report.tenants:
        src, dst = source.for_tenant(tenant), target.for_tenant(tenant)
        if _export(src) != _export(dst):
            equal = False
            report.problems.append(f"tenant {tenant!r}: the exports differ")
        overlaps += _search_overlaps(src, dst)
    report.exports_equal = equal
    report.search_agreement = sum(overlaps) / len(overlaps) if overlaps else None


def _export(mem: Memory) -> list[str]:
    out = io.StringIO()
    mem.export(out)
    return out.getvalue().splitlines()[1:]  # the header says when it was written


def _search_overlaps(src: Memory, dst: Memory) -> list[float]:
    overlaps: list[float] = []
    rows = itertools.islice(
        (r for r in src._store.iter_rows(src.tenant, None) if r.kind == "message"), 2000
    )
    for row in itertools.islice(rows, 0, None, 80):
        if len(overlaps) >= CHECK_QUERIES:
            break
        user, agent = row.scope.user_id, row.scope.agent_id
        before = {h.id for h in src.search(row.text, user_id=user, agent_id=agent, limit=5)}
        after = {h.id for h in dst.search(row.text, user_id=user, agent_id=agent, limit=5)}
        overlaps.append(len(before & after) / len(before | after) if before | after else 1.0)
    return overlaps
