"""The Memory facade end to end, on a real SQLite file."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engramdb import (
    ContentTooLarge,
    EmbedderMismatch,
    EmptyContent,
    InvalidFilter,
    InvalidInput,
    InvalidTimestamp,
    Memory,
    MemoryNotFound,
    MissingScope,
    StoreError,
    StoreVersionError,
    UnknownRole,
)

CAROLINE = [
    {
        "role": "user",
        "name": "Caroline",
        "content": "I went to a LGBTQ support group yesterday.",
        "timestamp": "2023-05-08T13:56:00",
        "metadata": {"ref": "D1:3"},
    },
    {"role": "assistant", "content": "That sounds powerful!"},
]


def test_issue_snippet_works_as_written(mem: Memory) -> None:
    mem.add(CAROLINE, user_id="caroline", session_id="s1")
    hits = mem.search("When did Caroline go to the support group?", user_id="caroline", limit=10)
    # The fact distilled from the turn answers first, dated, citing the turn it came from.
    assert hits[0].kind == "fact"
    assert hits[0].text == "Caroline went to a LGBTQ support group on 7 May 2023"
    assert hits[0].sources[0].metadata["ref"] == "D1:3"
    turn = next(h for h in hits if h.kind == "message")
    assert turn.text == "I went to a LGBTQ support group yesterday."
    assert turn.score > 0
    assert turn.occurred_at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert turn.sources[0].metadata["ref"] == "D1:3"
    context = mem.context("What has Caroline been up to?", user_id="caroline", max_tokens=2000)
    assert "support group" in context
    assert "7 May 2023" in context  # "yesterday" resolved against the message's own date


def test_default_store_lives_in_engram_home(tmp_path: Path) -> None:
    with Memory(embedder="test") as m:
        assert Path(m.path) == tmp_path / "home" / "engram.db"
        m.add("hello", user_id="u")
    assert (tmp_path / "home" / "engram.db").exists()


def test_reply_without_timestamp_inherits_the_previous_one(mem: Memory) -> None:
    ids = mem.add(CAROLINE, user_id="caroline", session_id="s1")
    reply = mem.get(ids[1]).occurred_at
    assert reply - datetime(2023, 5, 8, 13, 56, tzinfo=UTC) == timedelta(milliseconds=1)
    context = mem.context("support group", user_id="caroline")
    assert context.index("Caroline: I went") < context.index("That sounds powerful")


def test_add_is_idempotent_within_a_session(mem: Memory) -> None:
    first = mem.add(CAROLINE, user_id="caroline", session_id="s1")
    again = mem.add(CAROLINE, user_id="caroline", session_id="s1")
    assert first == again
    assert len(mem.list(user_id="caroline", kind="message").items) == 2
    assert len(mem.facts(user_id="caroline").items) == 1  # the repeat confirmed, not duplicated
    other_session = mem.add(CAROLINE, user_id="caroline", session_id="s2")
    assert set(other_session).isdisjoint(first)


def test_a_plain_string_is_a_user_message(mem: Memory) -> None:
    (ident,) = mem.add("I like green tea", user_id="u")
    record = mem.get(ident)
    assert record.role == "user"
    assert record.text == "I like green tea"


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "user", "content": "  "}], EmptyContent),
        ([{"role": "narrator", "content": "hi"}], UnknownRole),
        ([{"role": "user", "content": "hi", "timestamp": "last tuesday-ish"}], InvalidTimestamp),
        ([{"role": "user", "content": "x" * 40_000}], ContentTooLarge),
        ([{"role": "user", "content": "hi", "colour": "red"}], InvalidInput),
        ([{"role": "user", "content": "hi", "metadata": {"when": object()}}], InvalidInput),
        ([], InvalidInput),
    ],
)
def test_bad_messages_are_refused_and_nothing_is_written(
    mem: Memory, messages: list[dict[str, object]], error: type[Exception]
) -> None:
    batch = [{"role": "user", "content": "a good message"}, *messages]
    with pytest.raises(error) as info:
        mem.add(batch if messages else messages, user_id="u")
    assert str(info.value)
    assert mem.list(user_id="u").items == []


def test_every_operation_needs_a_scope(mem: Memory) -> None:
    with pytest.raises(MissingScope, match="user_id"):
        mem.add("hi")
    with pytest.raises(MissingScope):
        mem.search("hi")
    with pytest.raises(MissingScope):
        mem.list()
    with pytest.raises(MissingScope):
        mem.delete_all()


def test_scopes_are_isolated(mem: Memory) -> None:
    mem.add("My secret code is 4512", user_id="alice")
    mem.add("I like apples", user_id="bob")
    mem.add("Agent note about codes", agent_id="helper")
    assert all("4512" not in h.text for h in mem.search("secret code", user_id="bob"))
    assert next(h.text for h in mem.search("secret code", user_id="alice")).endswith("4512")
    assert all(
        h.text != "My secret code is 4512" for h in mem.search("secret code", agent_id="helper")
    )
    assert mem.search("anything", user_id="nobody") == []


def test_tenants_are_isolated(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with Memory(path, embedder="test", tenant="acme") as acme:
        (ident,) = acme.add("acme roadmap is secret", user_id="u")
    with Memory(path, embedder="test", tenant="globex") as globex:
        assert globex.search("roadmap", user_id="u") == []
        with pytest.raises(MemoryNotFound):
            globex.get(ident)
        with pytest.raises(MemoryNotFound):
            globex.delete(ident)


def test_update_keeps_history_and_reindexes(mem: Memory) -> None:
    (ident,) = mem.add("I live in Berlin", user_id="u")
    mem.update(ident, text="I live in Lisbon", metadata={"source": "user-fix"})
    record = mem.get(ident)
    assert record.text == "I live in Lisbon"
    assert record.metadata == {"source": "user-fix"}
    assert ident in [h.id for h in mem.search("Lisbon", user_id="u")[:2]]
    assert all("Berlin" not in h.text for h in mem.search("Berlin", user_id="u"))
    # The fact of the old text went with it; the corrected text gave its own.
    assert [f.text for f in mem.facts(user_id="u", include_expired=True).items] == [
        "The user lives in Lisbon"
    ]
    events = [(e.event, (e.after or {}).get("text")) for e in mem.history(ident)]
    assert events == [("create", "I live in Berlin"), ("update", "I live in Lisbon")]
    mem.update(ident, metadata={"source": None})
    assert mem.get(ident).metadata == {}


def test_delete_purges_text_everywhere(mem: Memory, tmp_path: Path) -> None:
    (ident,) = mem.add("my passport number is ZX81-7781", user_id="u")
    mem.add("unrelated chatter", user_id="u")
    mem.delete(ident)
    with pytest.raises(MemoryNotFound):
        mem.get(ident)
    with pytest.raises(MemoryNotFound):
        mem.delete(ident)
    assert [e.event for e in mem.history(ident)] == ["create", "delete"]
    assert all(e.before is None and e.after is None for e in mem.history(ident))
    assert mem.search("passport ZX81", user_id="u")[0].text == "unrelated chatter"
    mem.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    assert b"ZX81-7781" not in raw


def test_delete_all_empties_the_scope_only(mem: Memory) -> None:
    mem.add(["one", "two", "three"], user_id="u")
    mem.add("keep me", user_id="v")
    assert mem.delete_all(user_id="u") == 3
    assert mem.list(user_id="u").items == []
    assert len(mem.list(user_id="v").items) == 1


def test_list_paginates_without_gaps_or_repeats(mem: Memory) -> None:
    ids = mem.add([f"message number {i}" for i in range(25)], user_id="u")
    seen: list[str] = []
    cursor = None
    while True:
        page = mem.list(user_id="u", limit=10, cursor=cursor)
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids


def test_as_of_hides_the_future(mem: Memory) -> None:
    mem.add(
        [{"role": "user", "content": "I adopted a cat named Miso", "timestamp": "2023-01-10"}],
        user_id="u",
    )
    mem.add(
        [
            {
                "role": "user",
                "content": "Miso the cat knocked over my plant",
                "timestamp": "2023-06-01",
            }
        ],
        user_id="u",
    )
    texts = [h.text for h in mem.search("cat Miso", user_id="u", as_of="2023-03-01")]
    assert sorted(texts) == ["I adopted a cat named Miso", "The user has a cat named Miso"]


def test_query_time_words_prefer_that_period(mem: Memory) -> None:
    mem.add(
        [{"role": "user", "content": "Went hiking in the mountains", "timestamp": "2023-03-04"}],
        user_id="u",
    )
    mem.add(
        [{"role": "user", "content": "Went hiking by the sea", "timestamp": "2023-05-06"}],
        user_id="u",
    )
    hits = mem.search("Where did I go hiking last week?", user_id="u", as_of="2023-05-10")
    assert hits[0].text == "Went hiking by the sea"
    assert "time" in hits[0].explain


def test_filters_metadata_and_time(mem: Memory) -> None:
    mem.add(
        [
            {
                "role": "user",
                "content": "budget meeting notes",
                "timestamp": "2023-01-01",
                "metadata": {"topic": "work"},
            },
            {
                "role": "user",
                "content": "budget for the holiday",
                "timestamp": "2023-02-01",
                "metadata": {"topic": "home"},
            },
        ],
        user_id="u",
    )
    work = mem.search("budget", user_id="u", filters={"metadata": {"topic": "work"}})
    assert [h.text for h in work] == ["budget meeting notes"]
    late = mem.search("budget", user_id="u", filters={"since": "2023-01-15"})
    assert [h.text for h in late] == ["budget for the holiday"]
    with pytest.raises(InvalidFilter, match="unknown filter"):
        mem.search("budget", user_id="u", filters={"topic": "work"})


def test_context_respects_the_budget_and_orders_by_time(mem: Memory) -> None:
    mem.add(
        [
            {
                "role": "user",
                "content": f"Day {i}: I practised piano scales for {i} minutes",
                "timestamp": f"2023-04-{i:02d}T10:00:00",
            }
            for i in range(1, 29)
        ],
        user_id="u",
        session_id="april",
    )
    text = mem.context("piano practice", user_id="u", max_tokens=120)
    assert len(text) / 4 <= 120
    days = [
        int(line.split("Day ")[1].split(":")[0]) for line in text.splitlines() if "Day " in line
    ]
    assert days == sorted(days) and 0 < len(days) < 28
    assert mem.context("piano", user_id="nobody") == "No relevant memories."


def test_export_import_round_trip_gives_identical_search(mem: Memory, tmp_path: Path) -> None:
    mem.add(CAROLINE, user_id="caroline", session_id="s1")
    mem.add(
        [
            {
                "role": "user",
                "content": "I painted a sunrise last Saturday",
                "timestamp": "2023-06-12T10:00:00",
            }
        ],
        user_id="caroline",
        session_id="s2",
    )
    buffer = io.StringIO()
    exported = mem.export(buffer)
    assert exported == 3 + len(mem.facts(user_id="caroline", include_expired=True).items)
    path = tmp_path / "export.jsonl"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    with Memory(tmp_path / "copy.db", embedder="test") as copy:
        assert copy.import_file(path) == exported
        assert copy.import_file(path) == 0  # idempotent
        for query in ("support group", "painting", "what happened in June?"):
            original = [
                (h.id, h.text, h.occurred_at) for h in mem.search(query, user_id="caroline")
            ]
            restored = [
                (h.id, h.text, h.occurred_at) for h in copy.search(query, user_id="caroline")
            ]
            assert original == restored


def test_changing_the_embedder_is_refused_or_reembeds(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Memory(path, embedder="test") as m:
        m.add("hello world", user_id="u")
    with pytest.raises(EmbedderMismatch, match="reembed"):
        Memory(path, embedder="test:32")
    with Memory(path, embedder="test:32", reembed=True) as m:
        assert m.search("hello", user_id="u")[0].text == "hello world"
        assert m.stats()["embedder"] == m.embedder.name


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    Memory(path, embedder="test").close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    with pytest.raises(StoreVersionError, match="upgrade engramdb"):
        Memory(path, embedder="test")


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n" * 100)
    with pytest.raises(StoreError, match="not an engramdb store"):
        Memory(path, embedder="test")


def test_search_rejects_bad_arguments(mem: Memory) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        mem.search("  ", user_id="u")
    with pytest.raises(InvalidInput, match="limit"):
        mem.search("x", user_id="u", limit=0)
    with pytest.raises(InvalidTimestamp):
        mem.search("x", user_id="u", as_of="soon")


def test_correcting_a_turn_rekeys_the_reply_after_it(mem: Memory) -> None:
    first, _ = mem.add(
        [
            {"role": "user", "content": "My locker code is 7781"},
            {"role": "assistant", "content": "Noted!"},
        ],
        user_id="u",
        session_id="s",
    )
    mem.update(first, text="My locker code is private")
    assert all("7781" not in h.text for h in mem.search("locker code 7781", user_id="u"))
    assert all(h.explain.get("lexical") is None for h in mem.search("7781", user_id="u"))


def test_searches_run_while_another_thread_writes(mem: Memory) -> None:
    import threading

    mem.add([f"seed message about topic {i}" for i in range(20)], user_id="u")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(30):
                mem.add(f"new note {i} about gardening", user_id="u", session_id=f"w{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(30):
                assert mem.search("gardening topic", user_id="u")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(mem.list(user_id="u", limit=100).items) == 50
    assert len(mem.search("new note gardening", user_id="u", limit=50)) >= 30


def test_relative_dates_use_the_speakers_own_clock(mem: Memory) -> None:
    # 01:30 on 9 May in UTC+2 is still 8 May in UTC; "yesterday" for the speaker is 8 May.
    (ident,) = mem.add(
        [
            {
                "role": "user",
                "content": "I ran 10 km yesterday",
                "timestamp": "2023-05-09T01:30:00+02:00",
            }
        ],
        user_id="u",
    )
    record = mem.get(ident)
    assert record.occurred_at == datetime(2023, 5, 8, 23, 30, tzinfo=UTC)
    assert record.time_mentions[0].label() == "8 May 2023"


def test_concurrent_searches_all_answer_and_pass_an_injected_gate_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    mem = Memory(tmp_path / "gate.db", embedder="test", search_gate=threading.BoundedSemaphore(1))
    mem.add(
        [{"role": "user", "content": f"note {i} about the garden and the lake"} for i in range(20)],
        user_id="u1",
        session_id="s1",
    )
    inside, most = 0, 0
    count_lock = threading.Lock()
    dense = mem._store.dense

    def slow_dense(*args: object, **kwargs: object) -> object:
        nonlocal inside, most
        with count_lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with count_lock:
            inside -= 1
        return dense(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mem._store, "dense", slow_dense)
    answers: list[int] = []

    def client() -> None:
        for _ in range(3):
            answers.append(len(mem.search("garden lake", user_id="u1", limit=5)))

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mem.close()
    assert answers == [5] * 18
    assert most == 1
