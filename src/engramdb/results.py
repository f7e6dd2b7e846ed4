"""Stored rows into the records and hits that cross the public API.

Event times are shown on the speaker's own clock (the offset their timestamp carried, kept with
the record), so "13:56" in a context is the time the speaker saw; system times are UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .pipeline.messages import speaker_clock
from .records import Row
from .types import Hit, MemoryRecord, Source, TimeMention


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def mention(d: Mapping[str, Any]) -> TimeMention:
    return TimeMention(
        text=d["text"],
        start=datetime.fromisoformat(d["start"]),
        end=datetime.fromisoformat(d["end"]),
        granularity=d["granularity"],
    )


def source(row: Row) -> Source:
    return Source(
        id=row.id,
        role=row.role or "",
        name=row.name,
        occurred_at=speaker_clock(row.occurred_at, row.tz_offset),
        session_id=row.session_id,
        metadata=row.metadata,
    )


def sources_of(rows: Sequence[Row], by_id: Mapping[str, Row]) -> dict[str, list[Source]]:
    """Provenance of each row: a message is its own source; a derived record cites its
    messages (``by_id`` holds them)."""
    return {
        row.id: (
            [source(row)]
            if row.kind == "message"
            else [source(by_id[s]) for s in row.source_ids if s in by_id]
        )
        for row in rows
    }


def record(row: Row, sources: list[Source]) -> MemoryRecord:
    return MemoryRecord(
        id=row.id,
        kind=row.kind,
        text=row.text,
        scope=row.scope,
        session_id=row.session_id,
        role=row.role,
        name=row.name,
        occurred_at=speaker_clock(row.occurred_at, row.tz_offset),
        recorded_at=_utc(row.recorded_at),
        updated_at=_utc(row.updated_at),
        metadata=row.metadata,
        time_mentions=[mention(m) for m in row.time_mentions],
        sources=sources,
        archived_at=None if row.archived_at is None else _utc(row.archived_at),
        **fact_fields(row),
    )


def fact_fields(row: Row) -> dict[str, Any]:
    """The validity and statement of a fact (nothing for other records)."""
    fact = row.fact
    if fact is None:
        return {}
    return {
        "valid_from": speaker_clock(fact.valid_from, row.tz_offset),
        "valid_to": None if fact.valid_to is None else speaker_clock(fact.valid_to, row.tz_offset),
        "expired_at": None if fact.expired_at is None else _utc(fact.expired_at),
        "superseded_by": fact.superseded_by,
        "subject": fact.subject,
        "attribute": fact.attribute,
        "value": fact.value,
    }


def hit(row: Row, score: float, ranks: dict[str, Any], sources: list[Source]) -> Hit:
    rec = record(row, sources)
    return Hit(
        id=row.id,
        text=row.text,
        kind=row.kind,
        score=score,
        occurred_at=rec.occurred_at,
        session_id=row.session_id,
        metadata=row.metadata,
        sources=sources,
        role=row.role,
        name=row.name,
        time_mentions=rec.time_mentions,
        explain=ranks,
        **fact_fields(row),
    )
