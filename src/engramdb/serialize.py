"""How results leave engramdb: one JSON shape for every door, and text safe for a terminal.

The CLI's ``--json``, the REST server and the MCP tools all call :func:`to_dict` / :func:`dumps`,
so a memory looks the same wherever it is read. Each result type has one fixed key order;
datetimes are ISO 8601 strings that keep their offset; a :class:`~engramdb.types.Scope` is
flattened to ``user_id`` and ``agent_id`` (the tenant belongs to the server, never to a client).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeAlias, overload

from .types import (
    ApiKey,
    Delivery,
    Entity,
    HistoryEntry,
    Hit,
    MemoryRecord,
    Page,
    Profile,
    ProfileEntry,
    Scope,
    ScopeSummary,
    Source,
    TimeMention,
    Webhook,
)

JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"
#: The result types :func:`to_dict` knows.
Result: TypeAlias = (
    Hit
    | MemoryRecord
    | Page
    | HistoryEntry
    | Source
    | TimeMention
    | Scope
    | Entity
    | Profile
    | ProfileEntry
    | ScopeSummary
    | ApiKey
    | Webhook
    | Delivery
)

#: json.dumps(ensure_ascii=False) escapes C0 controls but leaves DEL and C1 controls (U+0080 to
#: U+009F: a terminal may read U+009B as CSI) and lone surrogates (unencodable) raw.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\ud800-\udfff]")
#: Characters that would act on a terminal instead of showing: C0 (but newline and tab), DEL,
#: C1; lone surrogates cannot be written to a UTF-8 terminal at all.
_NOT_PRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


@overload
def to_dict(obj: Result | Mapping[str, Any]) -> dict[str, JSON]: ...
@overload
def to_dict(obj: list[Any] | tuple[Any, ...]) -> list[JSON]: ...
def to_dict(obj: Result | Mapping[str, Any] | list[Any] | tuple[Any, ...]) -> JSON:
    """A result, or a list or dict of results, as plain JSON values (dicts, lists, scalars).

    Raises:
        TypeError: something in it has no JSON form (it is not a result, a datetime, a
            str-keyed dict, a list or a JSON scalar).
    """
    return _value(obj)


def dumps(
    obj: Result | Mapping[str, Any] | list[Any] | tuple[Any, ...], indent: int | None = None
) -> str:
    """:func:`to_dict` as a JSON string; non-ASCII text stays readable, control characters
    are escaped.

    Raises:
        TypeError: as :func:`to_dict`.
        ValueError: a float is NaN or infinite, which JSON cannot represent.
    """
    text = json.dumps(to_dict(obj), ensure_ascii=False, allow_nan=False, indent=indent)
    # Only string contents can hold these characters, and there a \uXXXX escape means the same.
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab shown as an escape (``\\x1b``;
    a lone surrogate as ``\\udce9``), so stored text cannot move the cursor, clear the screen or
    retitle the terminal."""
    return _NOT_PRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _value(obj: object) -> JSON:
    match obj:
        case None | str() | int() | float():  # bool is an int
            return obj
        case datetime():
            return obj.isoformat()
        case Mapping():
            return {_key(k): _value(v) for k, v in obj.items()}
        case list() | tuple():
            return [_value(v) for v in obj]
        case Hit():
            return _hit(obj)
        case MemoryRecord():
            return _record(obj)
        case Page():
            return {"items": [_record(r) for r in obj.items], "next_cursor": obj.next_cursor}
        case HistoryEntry():
            return _history(obj)
        case Source():
            return _source(obj)
        case TimeMention():
            return _mention(obj)
        case Scope():
            return {"user_id": obj.user_id, "agent_id": obj.agent_id}
        case Entity():
            return {
                "id": obj.id, "name": obj.name, "type": obj.type, "aliases": list(obj.aliases),
                "relation": obj.relation, "relation_of": obj.relation_of,
                "mentions": obj.mentions, "memory_ids": list(obj.memory_ids),
            }  # fmt: skip
        case Profile():
            return {
                "user_id": obj.user_id, "agent_id": obj.agent_id,
                "entries": [_value(e) for e in obj.entries], "text": obj.text,
                "truncated": obj.truncated,
            }  # fmt: skip
        case ProfileEntry():
            return {
                "attribute": obj.attribute, "value": obj.value, "text": obj.text,
                "since": obj.since.isoformat(), "fact_id": obj.fact_id,
                "sources": list(obj.sources),
            }  # fmt: skip
        case ScopeSummary() | ApiKey() | Webhook() | Delivery():
            return _plain(obj)
    raise TypeError(f"{type(obj).__name__} has no JSON form")


def _plain(obj: ScopeSummary | ApiKey | Webhook | Delivery) -> dict[str, JSON]:
    """A flat record type, field by field in declaration order (a key's secret is not a
    field: it never leaves but once, when made)."""
    return {f.name: _value(getattr(obj, f.name)) for f in fields(obj)}


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"JSON object keys are strings, not {type(key).__name__} ({key!r})")
    return key


def _hit(hit: Hit) -> dict[str, JSON]:
    return {
        "id": hit.id,
        "kind": hit.kind,
        "text": hit.text,
        "score": hit.score,
        "session_id": hit.session_id,
        "role": hit.role,
        "name": hit.name,
        "occurred_at": hit.occurred_at.isoformat(),
        "metadata": _value(hit.metadata),
        "time_mentions": [_mention(m) for m in hit.time_mentions],
        "sources": [_source(s) for s in hit.sources],
        "explain": _value(hit.explain),
        **_fact(hit),
    }


def _record(rec: MemoryRecord) -> dict[str, JSON]:
    return {
        "id": rec.id,
        "kind": rec.kind,
        "text": rec.text,
        "user_id": rec.scope.user_id,
        "agent_id": rec.scope.agent_id,
        "session_id": rec.session_id,
        "role": rec.role,
        "name": rec.name,
        "occurred_at": rec.occurred_at.isoformat(),
        "recorded_at": rec.recorded_at.isoformat(),
        "updated_at": rec.updated_at.isoformat(),
        "metadata": _value(rec.metadata),
        "time_mentions": [_mention(m) for m in rec.time_mentions],
        "sources": [_source(s) for s in rec.sources],
        **_fact(rec),
        "archived_at": None if rec.archived_at is None else rec.archived_at.isoformat(),
    }


def _fact(item: Hit | MemoryRecord) -> dict[str, JSON]:
    """A fact's statement and validity (None for other kinds)."""
    return {
        "valid_from": None if item.valid_from is None else item.valid_from.isoformat(),
        "valid_to": None if item.valid_to is None else item.valid_to.isoformat(),
        "expired_at": None if item.expired_at is None else item.expired_at.isoformat(),
        "superseded_by": item.superseded_by,
        "subject": item.subject,
        "attribute": item.attribute,
        "value": item.value,
    }


def _source(src: Source) -> dict[str, JSON]:
    return {
        "id": src.id,
        "role": src.role,
        "name": src.name,
        "session_id": src.session_id,
        "occurred_at": src.occurred_at.isoformat(),
        "metadata": _value(src.metadata),
    }


def _mention(mention: TimeMention) -> dict[str, JSON]:
    return {
        "text": mention.text,
        "start": mention.start.isoformat(),
        "end": mention.end.isoformat(),
        "granularity": mention.granularity,
    }


def _history(entry: HistoryEntry) -> dict[str, JSON]:
    return {
        "id": entry.id,
        "memory_id": entry.memory_id,
        "event": entry.event,
        "actor": entry.actor,
        "at": entry.at.isoformat(),
        "before": _value(entry.before),
        "after": _value(entry.after),
    }


__all__ = ["JSON", "Result", "dumps", "printable", "to_dict"]
