"""The one JSON shape of results (CLI --json, REST, MCP) and terminal-safe text."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from engramdb import Memory
from engramdb.serialize import dumps, printable, to_dict
from engramdb.types import (
    Entity,
    HistoryEntry,
    Hit,
    MemoryRecord,
    Page,
    Profile,
    ProfileEntry,
    Scope,
    Source,
    TimeMention,
)

CEST = timezone(timedelta(hours=2))
AT = datetime(2024, 3, 2, 10, 0, tzinfo=CEST)

MENTION = TimeMention(
    text="yesterday",
    start=datetime(2024, 3, 1, tzinfo=UTC),
    end=datetime(2024, 3, 2, tzinfo=UTC),
    granularity="day",
)
SOURCE = Source(
    id="m1", role="user", name="Ana", occurred_at=AT, session_id="s1", metadata={"ref": "D1:3"}
)
RECORD = MemoryRecord(
    id="m1",
    kind="message",
    text="I ran yesterday",
    scope=Scope("acme-tenant", "ana", None),
    session_id="s1",
    role="user",
    name="Ana",
    occurred_at=AT,
    recorded_at=AT,
    updated_at=AT,
    metadata={"ref": "D1:3", "tags": ["a", "b"], "n": 1.5},
    time_mentions=[MENTION],
    sources=[SOURCE],
)
HIT = Hit(
    id="m1",
    text="I ran yesterday",
    kind="message",
    score=0.25,
    occurred_at=AT,
    session_id="s1",
    metadata={"ref": "D1:3"},
    sources=[SOURCE],
    role="user",
    name="Ana",
    time_mentions=[MENTION],
    explain={"lexical": 1, "dense": 3},
)
ENTRY = HistoryEntry(
    id=7,
    memory_id="m1",
    event="update",
    before={"text": "I ran"},
    after={"text": "I ran yesterday"},
    actor="api",
    at=AT,
)
PAGE = Page(items=[RECORD], next_cursor="m1")

SOURCE_KEYS = ["id", "role", "name", "session_id", "occurred_at", "metadata"]
MENTION_KEYS = ["text", "start", "end", "granularity"]
SHAPES: list[tuple[Any, list[str]]] = [
    (
        RECORD,
        [
            "id",
            "kind",
            "text",
            "user_id",
            "agent_id",
            "session_id",
            "role",
            "name",
            "occurred_at",
            "recorded_at",
            "updated_at",
            "metadata",
            "time_mentions",
            "sources",
            "valid_from",
            "valid_to",
            "expired_at",
            "superseded_by",
            "subject",
            "attribute",
            "value",
            "archived_at",
        ],
    ),
    (
        HIT,
        [
            "id",
            "kind",
            "text",
            "score",
            "session_id",
            "role",
            "name",
            "occurred_at",
            "metadata",
            "time_mentions",
            "sources",
            "explain",
            "valid_from",
            "valid_to",
            "expired_at",
            "superseded_by",
            "subject",
            "attribute",
            "value",
        ],
    ),
    (ENTRY, ["id", "memory_id", "event", "actor", "at", "before", "after"]),
    (PAGE, ["items", "next_cursor"]),
    (SOURCE, SOURCE_KEYS),
    (MENTION, MENTION_KEYS),
    (Scope("acme-tenant", "ana", "bot"), ["user_id", "agent_id"]),
    (
        Entity("e1", "Inês", "person", ["Ines"], "sister", "Maya", 2, ["m1", "f1"]),
        ["id", "name", "type", "aliases", "relation", "relation_of", "mentions", "memory_ids"],
    ),
    (
        ProfileEntry("lives_in", "Porto", "Maya lives in Porto", AT, "f1", ["m1"]),
        ["attribute", "value", "text", "since", "fact_id", "sources"],
    ),
    (
        Profile("maya", None, [], "Profile of Maya (current):", False),
        ["user_id", "agent_id", "entries", "text", "truncated"],
    ),
]


@pytest.mark.parametrize(("obj", "keys"), SHAPES, ids=lambda v: type(v).__name__)
def test_each_result_has_a_pinned_key_order_and_round_trips(obj: Any, keys: list[str]) -> None:
    data = to_dict(obj)
    assert list(data) == keys
    assert json.loads(dumps(obj)) == data


@pytest.mark.parametrize(("obj", "keys"), SHAPES, ids=lambda v: type(v).__name__)
def test_every_field_of_a_result_is_serialised(obj: Any, keys: list[str]) -> None:
    # A field added to a type must be added to its JSON shape (or this test says so).
    names = {f.name for f in dataclasses.fields(obj)}
    if "scope" in names or isinstance(obj, Scope):
        names = (names - {"scope", "tenant"}) | {"user_id", "agent_id"}
    assert names == set(keys)


def test_nested_results_and_values() -> None:
    data = to_dict(RECORD)
    assert data["sources"] == [to_dict(SOURCE)]
    assert data["time_mentions"] == [to_dict(MENTION)]
    assert list(to_dict(SOURCE)) == SOURCE_KEYS
    assert list(to_dict(MENTION)) == MENTION_KEYS
    assert data["metadata"] == {"ref": "D1:3", "tags": ["a", "b"], "n": 1.5}
    assert to_dict(PAGE)["items"] == [data]
    assert to_dict(HIT)["explain"] == {"lexical": 1, "dense": 3}
    assert to_dict(ENTRY)["before"] == {"text": "I ran"}


def test_datetimes_are_iso_8601_and_keep_their_offset() -> None:
    data = to_dict(RECORD)
    assert data["occurred_at"] == "2024-03-02T10:00:00+02:00"
    assert datetime.fromisoformat(str(data["occurred_at"])) == AT
    assert to_dict(MENTION)["start"] == "2024-03-01T00:00:00+00:00"
    assert to_dict(ENTRY)["at"] == "2024-03-02T10:00:00+02:00"


def test_scope_is_flattened_and_the_tenant_never_leaves() -> None:
    assert to_dict(Scope("acme-tenant", "ana", None)) == {"user_id": "ana", "agent_id": None}
    data = to_dict(RECORD)
    assert (data["user_id"], data["agent_id"]) == ("ana", None)
    for obj in (RECORD, PAGE, [RECORD], {"record": RECORD}):
        assert "acme-tenant" not in dumps(obj)
        assert "tenant" not in dumps(obj)


def test_lists_and_dicts_of_results() -> None:
    assert to_dict([HIT, HIT]) == [to_dict(HIT), to_dict(HIT)]
    assert to_dict((SOURCE,)) == [to_dict(SOURCE)]
    assert to_dict({"hits": [HIT], "count": 1}) == {"hits": [to_dict(HIT)], "count": 1}
    assert json.loads(dumps({"when": AT})) == {"when": "2024-03-02T10:00:00+02:00"}


@pytest.mark.parametrize("bad", [object(), {1, 2}, {1: "a"}, [b"bytes"]], ids=repr)
def test_what_has_no_json_form_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        to_dict(bad)


def test_nan_is_refused_rather_than_written_as_invalid_json() -> None:
    with pytest.raises(ValueError):
        dumps({"score": float("nan")})


def test_control_characters_are_escaped_in_json_and_come_back() -> None:
    text = "evil \x1b[2J\x1b]0;pwned\x07 \x7f \x9b31m \x85 café 🐝\n"
    out = dumps({"text": text}, indent=2)
    for raw in ("\x1b", "\x07", "\x7f", "\x9b", "\x85"):
        assert raw not in out
    assert "café 🐝" in out  # readable, not \u-escaped
    assert json.loads(out) == {"text": text}


def test_lone_surrogates_are_escaped_so_the_json_can_be_written() -> None:
    out = dumps({"text": "caf\udce9"})
    out.encode("utf-8")
    assert json.loads(out) == {"text": "caf\udce9"}


def test_printable_escapes_controls_but_keeps_newlines_tabs_and_unicode() -> None:
    assert printable("a\x1b[2Jb\x07c\rd\x00") == "a\\x1b[2Jb\\x07c\\x0dd\\x00"
    assert printable("\x7f\x9b\x85") == "\\x7f\\x9b\\x85"
    assert printable("line 1\n\tline 2 — café 🐝") == "line 1\n\tline 2 — café 🐝"
    assert printable("caf\udce9") == "caf\\udce9"


def test_real_results_of_a_store_round_trip(mem: Memory) -> None:
    ident = mem.add(
        {"role": "user", "content": "I ran a marathon yesterday", "timestamp": "2024-03-02"},
        user_id="ana",
        session_id="s1",
    )[0]
    mem.update(ident, metadata={"topic": "sport"})
    results: list[tuple[Any, list[str]]] = [
        (mem.get(ident), SHAPES[0][1]),
        (mem.search("marathon", user_id="ana")[0], SHAPES[1][1]),
        (mem.history(ident)[-1], SHAPES[2][1]),
        (mem.list(user_id="ana"), SHAPES[3][1]),
    ]
    for result, keys in results:
        data = json.loads(dumps(result))
        assert list(data) == keys
    record = json.loads(dumps(mem.get(ident)))
    assert record["occurred_at"] == "2024-03-02T00:00:00+00:00"
    assert record["time_mentions"][0]["start"] == "2024-03-01T00:00:00+00:00"
    assert record["metadata"] == {"topic": "sport"}
    assert "default" not in json.dumps(record)  # the tenant
