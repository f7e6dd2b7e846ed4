"""The lossless export format: JSON lines, one memory each, after a header line.

```
{"engramdb_export": 1, "embedder": "local:...", "exported_at": "..."}
{"id": "...", "kind": "message", "user_id": "...", "text": "...", "occurred_at": "...", ...}
```

Vectors are not exported: they are derived data, recomputed on import (and the target store may
use another embedder). Everything else round-trips, ids and times included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .backends.base import Row
from .errors import ImportFormatError
from .importers import json_lines
from .types import Scope

FORMAT_VERSION = 1
_REQUIRED = ("id", "kind", "text", "occurred_at", "content_hash", "index_text")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def row_to_dict(row: Row) -> dict[str, Any]:
    """One row as an export record."""
    return {
        "id": row.id,
        "kind": row.kind,
        "user_id": row.scope.user_id,
        "agent_id": row.scope.agent_id,
        "session_id": row.session_id,
        "role": row.role,
        "name": row.name,
        "text": row.text,
        "index_text": row.index_text,
        "occurred_at": _iso(row.occurred_at),
        "recorded_at": _iso(row.recorded_at),
        "updated_at": _iso(row.updated_at),
        "metadata": row.metadata,
        "time_mentions": row.time_mentions,
        "content_hash": row.content_hash,
        "sources": row.source_ids,
    }


def write_export(out: IO[str], rows: Iterable[Row], embedder: str) -> int:
    """Write the header and every row; returns the number of rows."""
    header = {
        "engramdb_export": FORMAT_VERSION,
        "embedder": embedder,
        "exported_at": datetime.now(UTC).isoformat(),
    }
    out.write(json.dumps(header) + "\n")
    count = 0
    for row in rows:
        out.write(json.dumps(row_to_dict(row), ensure_ascii=False) + "\n")
        count += 1
    return count


def is_export_header(record: Mapping[str, Any]) -> bool:
    """Whether a JSON object is the first line of an engramdb export."""
    return "engramdb_export" in record


def row_from_dict(record: Mapping[str, Any], tenant: str, where: str) -> Row:
    """An export record back into a row (``where`` names it in errors)."""
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ImportFormatError(f"{where}: export record lacks {', '.join(missing)}")
    if not (record.get("user_id") or record.get("agent_id")):
        raise ImportFormatError(f"{where}: export record has neither user_id nor agent_id")
    try:
        return Row(
            id=str(record["id"]),
            scope=Scope(tenant, record.get("user_id"), record.get("agent_id")),
            kind=str(record["kind"]),
            session_id=record.get("session_id"),
            role=record.get("role"),
            name=record.get("name"),
            text=str(record["text"]),
            occurred_at=_ts(record["occurred_at"]),
            recorded_at=_ts(record.get("recorded_at") or record["occurred_at"]),
            updated_at=_ts(record.get("updated_at") or record["occurred_at"]),
            metadata=dict(record.get("metadata") or {}),
            time_mentions=list(record.get("time_mentions") or []),
            content_hash=str(record["content_hash"]),
            index_text=str(record["index_text"]),
            source_ids=[str(s) for s in record.get("sources") or []],
        )
    except (TypeError, ValueError) as exc:
        raise ImportFormatError(f"{where}: malformed export record ({exc})") from exc


def rows_from_export(
    records: Iterable[Mapping[str, Any]], tenant: str, batch: int
) -> Iterator[list[Row]]:
    """Batches of rows from export records (the header, if present, is skipped)."""
    pending: list[Row] = []
    for number, record in enumerate(records, start=1):
        if is_export_header(record):
            if record["engramdb_export"] != FORMAT_VERSION:
                raise ImportFormatError(
                    f"export format {record['engramdb_export']} is not supported by this "
                    f"engramdb (it reads format {FORMAT_VERSION}): upgrade engramdb"
                )
            continue
        pending.append(row_from_dict(record, tenant, f"record {number}"))
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


def read_export(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of an export file, checking that it is one."""
    for number, record in json_lines(path):
        if number == 1 and not is_export_header(record):
            raise ImportFormatError(
                f"{path}: not an engramdb export (the first line must be its header); "
                "try --format jsonl"
            )
        yield record
