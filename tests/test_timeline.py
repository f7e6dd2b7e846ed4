"""``Memory.timeline``: a scope in the order things happened, through the library, on a real
SQLite store. The store's side (order, pages, cursors, filters, both backends) is
``tests/backends/test_contract_timeline.py``; here, what the facade adds: its arguments, the
period's bounds, kinds and the records it hands out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engramdb import (
    InvalidFilter,
    InvalidInput,
    InvalidTimestamp,
    Memory,
    MemoryRecord,
    MissingScope,
)
from engramdb.errors import InvalidCursor

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _said(mem: Memory, *offsets: float, user: str = "maya", **fields: Any) -> list[str]:
    """One user turn per offset (seconds after T), all in one batch; their ids."""
    turns = [
        {"role": "user", "name": "Maya", "content": f"turn at {o:+}",
         "timestamp": (T + timedelta(seconds=o)).isoformat()}
        for o in offsets
    ]  # fmt: skip
    return mem.add(turns, user_id=user, **fields)


def _all(mem: Memory, **args: Any) -> list[MemoryRecord]:
    items: list[MemoryRecord] = []
    cursor = None
    while True:
        page = mem.timeline(cursor=cursor, **args)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


def test_the_turns_in_the_order_they_were_said_page_by_page(mem: Memory) -> None:
    late = _said(mem, 300, 100)  # recorded first, said later
    early = _said(mem, -50, 0)
    turns = _all(mem, user_id="maya", limit=1)
    assert [t.id for t in turns] == [*early, late[1], late[0]]
    assert turns[0].occurred_at == T - timedelta(seconds=50)
    assert all(t.kind == "message" for t in turns)


def test_since_and_until_both_include_their_instant_exactly(mem: Memory) -> None:
    ids = _said(mem, -0.001, 0, 60, 60.000001)
    window = _all(mem, user_id="maya", since=T, until=T + timedelta(seconds=60))
    assert [t.id for t in window] == ids[1:3]
    # The same instants as ISO 8601 strings and as epoch seconds.
    as_text = _all(mem, user_id="maya", since="2024-05-01T14:00:00+02:00",
                   until="2024-05-01T12:01:00Z")  # fmt: skip
    as_epoch = _all(mem, user_id="maya", since=T.timestamp(), until=T.timestamp() + 60)
    assert [t.id for t in as_text] == [t.id for t in as_epoch] == ids[1:3]
    assert _all(mem, user_id="maya", since=T, until=T) == [window[0]]  # a period of one instant


def test_kinds_archived_and_session(mem: Memory) -> None:
    [home] = mem.add(
        {"role": "user", "name": "Maya", "content": "I live in Lisbon.", "timestamp": T},
        user_id="maya", session_id="a",
    )  # fmt: skip
    [other] = _said(mem, 30, session_id="b")
    facts = _all(mem, user_id="maya", kind="fact")
    assert [f.text for f in facts] == ["Maya lives in Lisbon"]
    assert [s.id for s in facts[0].sources] == [home]  # records come with their sources
    everything = _all(mem, user_id="maya", kind=None)
    assert {r.id for r in everything} == {home, other, facts[0].id}
    assert [r.id for r in _all(mem, user_id="maya", session_id="b")] == [other]
    mem.archive(other)
    assert [r.id for r in _all(mem, user_id="maya", archived=False)] == [home]
    assert [r.id for r in _all(mem, user_id="maya", archived=True)] == [other]
    assert len(_all(mem, user_id="maya")) == 2  # archived ones are shown by default


def test_scopes_and_tenants_are_apart(mem: Memory) -> None:
    _said(mem, 0, user="maya")
    _said(mem, 0, user="maya", agent_id="coach")
    assert len(_all(mem, user_id="maya")) == 1
    assert len(_all(mem, user_id="maya", agent_id="coach")) == 1
    assert _all(mem.for_tenant("globex"), user_id="maya") == []
    page = mem.timeline(user_id="maya", agent_id="coach", limit=1)
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("args", "error", "names"),
    [
        ({}, MissingScope, "timeline"),
        ({"user_id": ""}, InvalidInput, "timeline() user_id"),
        ({"user_id": "maya", "since": "last tuesday-ish"}, InvalidTimestamp, "timeline() since"),
        ({"user_id": "maya", "until": [2024]}, InvalidTimestamp, "timeline() until"),
        ({"user_id": "maya", "since": T, "until": T - timedelta(seconds=1)}, InvalidInput,
         "is after until"),
        ({"user_id": "maya", "kind": "poem"}, InvalidFilter, "timeline() kind"),
        ({"user_id": "maya", "kind": ["message"]}, InvalidFilter, "timeline() kind"),
        ({"user_id": "maya", "limit": 0}, InvalidInput, "timeline() limit"),
        ({"user_id": "maya", "limit": 1001}, InvalidInput, "timeline() limit"),
        ({"user_id": "maya", "limit": 2.0}, InvalidInput, "timeline() limit"),
        ({"user_id": "maya", "session_id": 7}, InvalidInput, "timeline() session_id"),
        ({"user_id": "maya", "archived": "no"}, InvalidInput, "timeline() archived"),
        ({"user_id": "maya", "cursor": 12}, InvalidCursor, "not a cursor"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_naming_them(
    mem: Memory, args: dict[str, Any], error: type[Exception], names: str
) -> None:
    _said(mem, 0)
    with pytest.raises(error, match=names.replace("(", r"\(").replace(")", r"\)")):
        mem.timeline(**args)


def test_a_cursor_belongs_to_its_timeline(mem: Memory) -> None:
    _said(mem, 0, 1, 2)
    _said(mem, 0, user="tom")
    cursor = mem.timeline(user_id="maya", since=T, limit=1).next_cursor
    assert cursor is not None
    assert len(mem.timeline(user_id="maya", since=T, cursor=cursor).items) == 2
    for args in [
        {"user_id": "tom"},
        {"user_id": "maya"},  # another period
        {"user_id": "maya", "since": T, "kind": None},
        {"user_id": "maya", "since": T, "archived": False},
    ]:
        with pytest.raises(InvalidCursor, match="another scope or filter"):
            mem.timeline(cursor=cursor, **args)
    with pytest.raises(InvalidCursor):
        mem.list(user_id="maya", cursor=cursor)
    with pytest.raises(InvalidCursor):
        mem.for_tenant("globex").timeline(user_id="maya", since=T, cursor=cursor)
