"""The lossless export format: JSON lines, one record each, after a header line.

```
{"engramdb_export": 2, "embedder": "local:...", "exported_at": "..."}
{"id": "...", "kind": "message", "user_id": "...", "text": "...", "occurred_at": "...",
 "keys": {"own": "...", "context_name": "...", "context": "..."}, ...}
```

Vectors are derived data: by default they are not exported but recomputed on import from the
exported keys, which are the keys ``add`` built, so an import finds what the original store
found. ``export(vectors=True)`` (and ``engram migrate``) adds each record's vector
(``"embedding": {"embedder", "hash", "vector": base64 float32}``); an import into a store with
the same embedder stores it as it is, one with another embedder embeds again. Everything
else round-trips, ids, times, the speaker's offset and identity included. Format 1 (one
``index_text`` string) is still read.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import ImportFormatError, InvalidInput, shorten
from .importers import json_lines
from .records import EntityLink, FactInfo, Keys, Row
from .types import KINDS, ROLES, Scope
from .validate import FIRST_INSTANT, LAST_INSTANT, epoch, metadata_arg, name_arg, text_arg

FORMAT_VERSION = 2
_READS = (1, 2)
_OLD_MARK = "\n(after "


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def row_to_dict(row: Row, embedder: str | None = None) -> dict[str, Any]:
    """One row as an export record (with its vector when it carries one and ``embedder`` names
    the model that made it)."""
    record = _record_dict(row)
    if row.embedding is not None and embedder is not None:
        ehash, vector = row.embedding
        raw = np.asarray(vector, dtype="<f4").tobytes()
        record["embedding"] = {
            "embedder": embedder, "hash": ehash, "vector": base64.b64encode(raw).decode("ascii"),
        }  # fmt: skip
    return record


def _record_dict(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "user_id": row.scope.user_id,
        "agent_id": row.scope.agent_id,
        "session_id": row.session_id,
        "role": row.role,
        "name": row.name,
        "text": row.text,
        "keys": {
            "own": row.keys.own,
            "context_name": row.keys.context_name,
            "context": row.keys.context_text,
        },
        "occurred_at": _iso(row.occurred_at),
        "tz_offset": row.tz_offset,
        "recorded_at": _iso(row.recorded_at),
        "updated_at": _iso(row.updated_at),
        "metadata": row.metadata,
        "time_mentions": row.time_mentions,
        "dedupe_key": row.dedupe_key,
        "sources": row.source_ids,
        **({} if row.archived_at is None else {"archived_at": _iso(row.archived_at)}),
        **({} if row.fact is None else {"fact": _fact_dict(row.fact)}),
        **({} if not row.mentions else {"mentions": [_mention_dict(m) for m in row.mentions]}),
    }


def _mention_dict(link: EntityLink) -> dict[str, Any]:
    return {
        "entity_id": link.new_id,
        "name": link.name,
        "type": link.type,
        "relation": link.relation,
        "relation_of": link.relation_of,
    }


def _mentions_from(value: object) -> list[EntityLink]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("mentions must be a list")
    out = []
    for item in value:
        if not isinstance(item, Mapping):
            raise ValueError("a mention must be an object")
        fields = [item.get(k) for k in ("entity_id", "name", "type")]
        if not all(isinstance(v, str) and v.strip() for v in fields):
            raise ValueError("a mention needs entity_id, name and type strings")
        extra = [item.get(k) for k in ("relation", "relation_of")]
        if not all(v is None or isinstance(v, str) for v in extra):
            raise ValueError("a mention's relation and relation_of are strings or null")
        out.append(
            EntityLink(
                new_id=str(fields[0]),
                name=str(fields[1]),
                type=str(fields[2]),
                relation=extra[0],
                relation_of=extra[1],
            )
        )
    return out


def _fact_dict(fact: FactInfo) -> dict[str, Any]:
    return {
        "subject": fact.subject,
        "attribute": fact.attribute,
        "value": fact.value,
        "claim_kind": fact.claim_kind,
        "single": fact.single,
        "ends": fact.ends,
        "valid_from": _iso(fact.valid_from),
        "valid_to": None if fact.valid_to is None else _iso(fact.valid_to),
        "expired_at": None if fact.expired_at is None else _iso(fact.expired_at),
        "superseded_by": fact.superseded_by,
        "stated_to": None if fact.stated_to is None else _iso(fact.stated_to),
        "confidence": fact.confidence,
    }


def _fact_from(value: object, kind: str) -> FactInfo | None:
    if value is None:
        if kind == "fact":
            raise ValueError("a fact record needs its 'fact' fields")
        return None
    if not isinstance(value, Mapping):
        raise ValueError("fact must be an object")
    texts = {k: value[k] for k in ("subject", "attribute", "value", "claim_kind")}
    if not all(isinstance(v, str) for v in texts.values()):
        raise ValueError("fact subject, attribute, value and claim_kind must be strings")
    flags = {k: value[k] for k in ("single", "ends")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise ValueError("fact single and ends must be true or false")
    confidence = value.get("confidence", 1.0)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValueError("fact confidence must be a number")
    superseded = value.get("superseded_by")
    if superseded is not None and not isinstance(superseded, str):
        raise ValueError("fact superseded_by must be an id")

    def when(name: str) -> float | None:
        raw = value.get(name)
        return None if raw is None else _ts(raw, f"fact {name}")

    start = when("valid_from")
    if start is None:
        raise ValueError("fact valid_from is missing")
    return FactInfo(
        **texts, **flags, valid_from=start, valid_to=when("valid_to"),
        expired_at=when("expired_at"), superseded_by=superseded, stated_to=when("stated_to"),
        confidence=float(confidence),
    )  # fmt: skip


def write_export(
    out: IO[str],
    rows: Iterable[Row],
    embedder: str,
    mentions: Callable[[list[Row]], dict[str, list[EntityLink]]] | None = None,
    vectors: Callable[[list[Row]], dict[str, tuple[str, Any]]] | None = None,
) -> int:
    """Write the header and every row (with the entities it mentions, read a page at a time by
    ``mentions``); returns the number of rows.

    Raises:
        InvalidInput: ``out`` is not a text file open for writing.
    """
    if not callable(getattr(out, "write", None)):
        raise InvalidInput(
            f"export() out must be a text file open for writing, got {type(out).__name__}: "
            "e.g. open(path, 'w', encoding='utf-8') or sys.stdout"
        )
    header = {
        "engramdb_export": FORMAT_VERSION,
        "embedder": embedder,
        "exported_at": datetime.now(UTC).isoformat(),
    }
    _write(out, json.dumps(header) + "\n")
    count = 0
    for page in _pages(rows, 500):
        found = mentions(page) if mentions is not None else {}
        embedded = vectors(page) if vectors is not None else {}
        for row in page:
            row.mentions = found.get(row.id, [])
            row.embedding = embedded.get(row.id)
            line = json.dumps(row_to_dict(row, embedder), ensure_ascii=False)
            _write(out, line + "\n")
            count += 1
    return count


def _pages(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    page: list[Row] = []
    for row in rows:
        page.append(row)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def _write(out: IO[str], line: str) -> None:
    try:
        out.write(line)
    except (ValueError, TypeError) as exc:  # closed, binary, or an encoding without the text
        raise InvalidInput(
            f"export() out cannot be written ({exc}): give a text file open for writing, e.g. "
            "open(path, 'w', encoding='utf-8')"
        ) from exc


def is_export_header(record: Mapping[str, Any]) -> bool:
    """Whether a JSON object is the first line of an engramdb export."""
    return "engramdb_export" in record


def row_from_dict(
    record: Mapping[str, Any], tenant: str, where: str, embedder: str | None = None
) -> Row:
    """An export record back into a row, every field checked (``where`` names it in errors).
    Its vector is kept only when it was made by ``embedder``."""
    try:
        row = _row(record, tenant)
        if embedder is not None and record.get("embedding") is not None:
            row.embedding = _embedding(record["embedding"], embedder)
        return row
    except (InvalidInput, KeyError, TypeError, ValueError, OverflowError) as exc:
        detail = f"lacks {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ImportFormatError(f"{where}: malformed export record ({detail})") from exc


def _embedding(value: object, embedder: str) -> tuple[str, Any] | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("hash"), str):
        raise ValueError("embedding must be {embedder, hash, vector}")
    if value.get("embedder") != embedder:
        return None  # another model's vector: embedded again on import
    try:
        raw = base64.b64decode(str(value.get("vector")), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"embedding vector is not base64: {exc}") from exc
    if not raw or len(raw) % 4:
        raise ValueError("embedding vector is not float32 values")
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(vector).all():
        raise ValueError("embedding vector has non-finite values")
    return str(value["hash"]), vector


def _row(record: Mapping[str, Any], tenant: str) -> Row:
    user = name_arg(record.get("user_id"), "user_id")
    agent = name_arg(record.get("agent_id"), "agent_id")
    if not (user or agent):
        raise ValueError("neither user_id nor agent_id")
    kind = record["kind"]
    if kind not in KINDS:
        raise ValueError(f"kind {shorten(kind, 40)} is not one of {', '.join(KINDS)}")
    role = record.get("role")
    if role is not None and role not in ROLES:
        raise ValueError(f"role {shorten(role, 40)} is not one of {', '.join(ROLES)}")
    text = text_arg(record["text"], "text")
    occurred = _ts(record["occurred_at"], "occurred_at")
    offset = record.get("tz_offset")
    if offset is not None and (
        isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) >= 86_400
    ):
        raise ValueError(f"tz_offset {shorten(offset, 40)} is not seconds within a day")
    dedupe = record.get("dedupe_key")
    if dedupe is not None and not isinstance(dedupe, str):
        raise ValueError("dedupe_key must be a string")
    sources = record.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ValueError("sources must be a list of ids")
    return Row(
        id=str(name_arg(record["id"], "id")),
        scope=Scope(tenant, user, agent),
        kind=kind,
        session_id=name_arg(record.get("session_id"), "session_id"),
        role=role,
        name=name_arg(record.get("name"), "name"),
        text=text,
        occurred_at=occurred,
        tz_offset=offset,
        recorded_at=_ts(record.get("recorded_at") or record["occurred_at"], "recorded_at"),
        updated_at=_ts(record.get("updated_at") or record["occurred_at"], "updated_at"),
        metadata=metadata_arg(record.get("metadata"), "metadata"),
        time_mentions=_mentions(record.get("time_mentions")),
        keys=_keys(record),
        dedupe_key=dedupe,
        source_ids=list(sources),
        fact=_fact_from(record.get("fact"), kind),
        mentions=_mentions_from(record.get("mentions")),
        archived_at=None
        if record.get("archived_at") is None
        else _ts(record["archived_at"], "archived_at"),
    )


def _ts(value: object, field: str) -> float:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be an ISO 8601 string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not FIRST_INSTANT <= moment.timestamp() <= LAST_INSTANT + 1:
        raise ValueError(f"{field} {shorten(value, 40)} is outside the years 1 to 9999 in UTC")
    return epoch(moment)


def _mentions(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("time_mentions must be a list")
    out = []
    for m in value:
        if not isinstance(m, dict) or set(m) != {"text", "start", "end", "granularity"}:
            raise ValueError("a time mention needs text, start, end and granularity")
        if not all(isinstance(v, str) for v in m.values()):
            raise ValueError("a time mention's text, start, end and granularity are strings")
        datetime.fromisoformat(m["start"]), datetime.fromisoformat(m["end"])
        out.append(dict(m))
    return out


def _keys(record: Mapping[str, Any]) -> Keys:
    keys = record.get("keys")
    if keys is None:  # format 1: one string, the quoted turn after a marker
        own, mark, quoted = str(record["index_text"]).rpartition(_OLD_MARK)
        if not mark:
            return Keys(own=str(record["index_text"]))
        who, sep, rest = quoted.removesuffix(")").partition(": ")
        return Keys(own, who, rest) if sep else Keys(own, None, who)
    if not isinstance(keys, dict) or not isinstance(keys.get("own"), str):
        raise ValueError("keys must be an object with own, context_name and context")
    name, context = keys.get("context_name"), keys.get("context") or ""
    if (name is not None and not isinstance(name, str)) or not isinstance(context, str):
        raise ValueError("keys.context_name and keys.context must be strings")
    return Keys(own=keys["own"], context_name=name, context_text=context)


def rows_from_export(
    records: Iterable[tuple[str, Mapping[str, Any]]],
    tenant: str,
    batch: int,
    embedder: str | None = None,
) -> Iterator[list[tuple[str, Row]]]:
    """Batches of (where, row) from (where, export record) pairs; ``where`` names a record in errors
    (``file:line``). The header, if present, is skipped.

    Raises:
        ImportFormatError: a malformed record, an unknown format version, or an id given twice.
    """
    pending: list[tuple[str, Row]] = []
    seen: set[str] = set()
    for where, record in records:
        if not isinstance(record, Mapping):
            raise ImportFormatError(f"{where}: not a JSON object")
        if is_export_header(record):
            version = record["engramdb_export"]
            if version not in _READS:
                raise ImportFormatError(
                    f"export format {shorten(version, 20)} is not supported by this "
                    f"engramdb (it reads formats {', '.join(map(str, _READS))}): upgrade engramdb"
                )
            continue
        row = row_from_dict(record, tenant, where, embedder)
        if row.id in seen:
            raise ImportFormatError(f"{where}: id {row.id!r:.60} appears twice in the export")
        seen.add(row.id)
        pending.append((where, row))
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


def read_export(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``file:line``, record) for every record of an export file, checking that it is one."""
    first = True
    for number, record in json_lines(path):
        if first and not is_export_header(record):
            raise ImportFormatError(
                f"{path}: not an engramdb export (the first line must be its header); "
                "try --format jsonl"
            )
        first = False
        yield f"{path}:{number}", record
