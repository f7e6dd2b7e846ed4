"""One test per defect class the trustworthy-core audit found; each failed on the code before.

Data kept or lost wrongly, wrong results, and the write path's failure modes (a failing embedder
in the middle of a write, a crash between two steps).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from engramdb import Memory
from engramdb.embedders.test import TestEmbedder
from engramdb.errors import EmbedderError, ImportFormatError, InvalidCursor, MemoryNotFound

T0 = "2024-05-28T09:00:00+00:00"


class FlakyEmbedder(TestEmbedder):
    """The deterministic test embedder, switchable to fail like a model server that is down."""

    def __init__(self) -> None:
        super().__init__(64)
        self.down = False

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if self.down:
            raise EmbedderError("embedding server unreachable")
        return super().embed_batch(texts)


def _files_text(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


# -- identity: only the same event folds ---------------------------------------------------------


def test_a_repeated_turn_without_a_timestamp_is_a_new_memory(mem: Memory) -> None:
    ids = mem.add(["yes", "what about dessert?", "yes"], user_id="u")
    assert len(set(ids)) == 3
    again = mem.add("took my pills", user_id="u")
    tomorrow = mem.add("took my pills", user_id="u")
    assert again != tomorrow
    assert len(mem.list(user_id="u").items) == 5


def test_the_same_instant_written_differently_is_one_event(mem: Memory) -> None:
    instant = datetime(2024, 5, 28, 9, 0, tzinfo=UTC)
    forms = [
        "2024-05-28T09:00:00Z",
        "2024-05-28T11:00:00+02:00",
        instant,
        instant.astimezone(timezone(timedelta(hours=-5))),
        instant.timestamp(),
        int(instant.timestamp()),
    ]
    ids = {
        mem.add({"content": "I moved to Porto", "timestamp": f}, user_id="u", session_id="s")[0]
        for f in forms
    }
    assert len(ids) == 1


def test_re_sending_a_timed_batch_stores_nothing_twice(mem: Memory) -> None:
    batch = [{"content": "hi", "timestamp": T0}, {"role": "assistant", "content": "hello"}]
    assert mem.add(batch, user_id="u", session_id="s") == mem.add(
        batch, user_id="u", session_id="s"
    )


def test_a_caller_id_dedupes_exactly(mem: Memory) -> None:
    first = mem.add({"id": "msg-1", "content": "hello"}, user_id="u")
    assert first == ["msg-1"]
    assert mem.add({"id": "msg-1", "content": "hello"}, user_id="u") == ["msg-1"]
    assert len(mem.list(user_id="u").items) == 1


def test_concurrent_identical_adds_return_one_id_without_error(mem: Memory) -> None:
    out: list[list[str]] = []
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            out.append(mem.add({"content": "same", "timestamp": T0}, user_id="u", session_id="s"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({ids[0] for ids in out}) == 1
    assert len(mem.list(user_id="u").items) == 1


# -- episode first: a failing embedder never loses a message -------------------------------------


def test_add_with_the_embedder_down_keeps_the_episode_and_finishes_later(tmp_path: Path) -> None:
    emb = FlakyEmbedder()
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        emb.down = True
        (ident,) = mem.add("I adopted a beagle called Rex", user_id="u")
        assert mem.get(ident).text == "I adopted a beagle called Rex"
        assert mem.stats()["jobs_pending"] == 1
        # Found by its words meanwhile (the query embeds fine once the server is back).
        emb.down = False
        assert mem.search("beagle", user_id="u")[0].id == ident
        assert mem.search("beagle", user_id="u")[0].explain.get("dense") is None
        report = mem.process()
        assert (report.done, report.failed) == (1, 0)
        assert mem.stats()["jobs_pending"] == 0
        assert mem.search("beagle", user_id="u")[0].explain.get("dense") == 1


def test_a_crash_between_episode_and_vector_leaves_a_resumable_job(tmp_path: Path) -> None:
    class Dying(TestEmbedder):
        def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
            raise KeyboardInterrupt  # stands for the process dying mid-write

    with Memory(tmp_path / "m.db", embedder=Dying(64)) as mem, pytest.raises(KeyboardInterrupt):
        mem.add({"content": "I moved to Porto", "timestamp": T0}, user_id="u", session_id="s")
    with Memory(tmp_path / "m.db", embedder=TestEmbedder(64)) as mem:
        (record,) = mem.list(user_id="u").items
        assert record.text == "I moved to Porto"
        assert mem.stats()["jobs_pending"] == 2  # its vector and its facts
        report = mem.process()
        assert (report.done, report.extracted, report.facts_added) == (1, 1, 1)
        assert mem.stats()["jobs_pending"] == 0


# -- delete and update are one transaction -------------------------------------------------------


def _conversation(mem: Memory) -> list[str]:
    return mem.add(
        [
            {"role": "user", "name": "Ana", "content": "My PIN: 4831qz", "timestamp": T0},
            {"role": "assistant", "content": "Stored. Anything else?"},
        ],
        user_id="u",
        session_id="s",
    )


def test_delete_with_the_embedder_down_leaves_no_trace_of_the_text(tmp_path: Path) -> None:
    emb = FlakyEmbedder()
    folder = tmp_path / "store"
    with Memory(folder / "m.db", embedder=emb) as mem:
        secret, reply = _conversation(mem)
        emb.down = True
        mem.delete(secret)  # the re-keying of the reply is in the same transaction
        assert b"4831qz" not in _files_text(folder)
        assert mem.search("PIN 4831qz", user_id="u") == [] or all(
            h.id != secret for h in mem.search("PIN 4831qz", user_id="u")
        )
        with pytest.raises(MemoryNotFound):
            mem.delete(secret)
        emb.down = False
        assert mem.process().done == 1
        assert mem.get(reply).text == "Stored. Anything else?"
    assert b"4831qz" not in _files_text(folder)


def test_a_failure_inside_delete_changes_nothing(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, _ = _conversation(mem)
    from engramdb.backends.sqlite import SQLiteTransaction

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(SQLiteTransaction, "set_keys", broken)
    with pytest.raises(OSError):
        mem.delete(secret)
    assert mem.get(secret).text.startswith("My PIN")
    monkeypatch.undo()
    mem.delete(secret)
    with pytest.raises(MemoryNotFound):
        mem.get(secret)


def test_update_rekeys_the_next_turn_in_the_same_transaction(tmp_path: Path) -> None:
    emb = FlakyEmbedder()
    folder = tmp_path / "store"
    with Memory(folder / "m.db", embedder=emb) as mem:
        secret, reply = _conversation(mem)
        emb.down = True
        mem.update(secret, text="My PIN is private")
        emb.down = False
        # The history of an update keeps the previous text by design (a correction, not a
        # delete); what must be gone is the next turn's key that quoted it.
        assert [h.id for h in mem.search("4831qz", user_id="u")] == []
        assert mem.process().done == 2
        assert mem.get(reply).text == "Stored. Anything else?"


def test_wal_copies_of_deleted_text_go_once_readers_finish(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    with Memory(folder / "m.db", embedder="test") as mem:
        secret, _ = _conversation(mem)
        reader = sqlite3.connect(folder / "m.db")
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM memories").fetchone()  # holds a snapshot
        mem.delete(secret)
        assert mem.stats()["scrub_pending"] is True
        reader.execute("COMMIT")
        reader.close()
        mem.add("an unrelated later write", user_id="u")  # retries the scrub
        assert mem.stats()["scrub_pending"] is False
        assert b"4831qz" not in _files_text(folder)


# -- results: export/import, cursors, time, metadata ----------------------------------------------


def _vectors(path: Path) -> dict[str, bytes]:
    with sqlite3.connect(path) as conn:
        return dict(
            conn.execute("SELECT m.id, v.vec FROM memories m JOIN vectors v ON v.rid = m.rid")
        )


def test_export_then_import_is_lossless_vectors_included(tmp_path: Path) -> None:
    data = json.loads(Path("src/engramdb/data/demo_conversation.json").read_text())
    with Memory(tmp_path / "a.db", embedder="test") as a:
        for session in data["sessions"]:
            turns = [{"role": r, "name": n, "content": t} for r, n, t in session["turns"]]
            turns[0]["timestamp"] = session["date"]
            a.add(turns, user_id="u", session_id=session["session_id"])
        with (tmp_path / "x.jsonl").open("w") as fh:
            count = a.export(fh)
        hits_a = [h.id for h in a.search("what did they cook?", user_id="u", limit=10)]
    with Memory(tmp_path / "b.db", embedder="test") as b:
        assert b.import_file(tmp_path / "x.jsonl") == count
        hits_b = [h.id for h in b.search("what did they cook?", user_id="u", limit=10)]
    assert _vectors(tmp_path / "a.db") == _vectors(tmp_path / "b.db")
    assert hits_a == hits_b


def test_an_export_imports_into_another_tenant_and_again_into_itself(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder="test") as mem:
        _conversation(mem)
        with (tmp_path / "x.jsonl").open("w") as fh:
            mem.export(fh)
        assert mem.import_file(tmp_path / "x.jsonl") == 0  # already there: nothing new, no error
    with Memory(db, embedder="test", tenant="acme") as other:
        assert other.import_file(tmp_path / "x.jsonl") == 2
        assert len(other.list(user_id="u").items) == 2


def test_a_bad_export_record_names_its_file_and_line(tmp_path: Path, mem: Memory) -> None:
    path = tmp_path / "x.jsonl"
    with path.open("w") as fh:
        _conversation(mem)
        mem.export(fh)
    lines = path.read_text().splitlines()
    bad = json.loads(lines[2])
    bad["occurred_at"] = "yesterday-ish"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(bad)]) + "\n")
    with Memory(tmp_path / "b.db", embedder="test") as fresh:
        with pytest.raises(ImportFormatError, match=r"x\.jsonl:3"):
            fresh.import_file(path)
        path.write_text("\n".join([lines[0], lines[1], lines[1]]) + "\n")
        with pytest.raises(ImportFormatError, match="appears twice"):
            fresh.import_file(path)
        assert fresh.stats()["memories"] == 0 or fresh.stats()["memories"] == 1


def test_a_list_cursor_survives_deletes_and_garbage_is_refused(mem: Memory) -> None:
    ids = mem.add([f"note {i}" for i in range(6)], user_id="u")
    page = mem.list(user_id="u", limit=3)
    mem.delete(page.items[-1].id)
    rest = mem.list(user_id="u", limit=10, cursor=page.next_cursor)
    assert [r.id for r in rest.items] == ids[3:]
    for garbage in ("garbage", ids[0], "eyJ2IjoxLCJmIjoieCIsInAiOjF9"):
        with pytest.raises(InvalidCursor):
            mem.list(user_id="u", cursor=garbage)
    mem.add("other user", user_id="v")
    with pytest.raises(InvalidCursor):
        mem.list(user_id="v", cursor=page.next_cursor)


def test_nan_metadata_is_refused_and_filtered_search_keeps_working(mem: Memory) -> None:
    mem.add({"content": "fine", "metadata": {"score": 1.5}}, user_id="u")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="NaN or Infinity"):
            mem.add({"content": "bad", "metadata": {"score": bad}}, user_id="u")
    hits = mem.search("fine", user_id="u", filters={"metadata": {"score": 1.5}})
    assert [h.text for h in hits] == ["fine"]


def test_something_said_now_with_a_naive_local_datetime_is_searchable(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        (ident,) = mem.add(
            {"content": "I booked the ramen class", "timestamp": datetime.now()}, user_id="u"
        )
        record = mem.get(ident)
        assert abs(record.occurred_at.timestamp() - time.time()) < 60
        assert [h.id for h in mem.search("ramen class", user_id="u")] == [ident]
        assert record.occurred_at.utcoffset() == timedelta(hours=9)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_context_prints_times_on_the_speakers_clock(mem: Memory) -> None:
    mem.add(
        {"content": "I land in Lisbon yesterday night", "timestamp": "2024-06-01T00:30:00+01:00"},
        user_id="u",
        session_id="s",
    )
    text = mem.context("Lisbon", user_id="u", as_of="2024-06-02T00:00:00Z")
    assert "(1 June 2024, 00:30)" in text
    assert "[yesterday = 31 May 2024]" in text


def test_update_resolves_relative_dates_on_the_speakers_clock(mem: Memory) -> None:
    (ident,) = mem.add(
        {"content": "nothing yet", "timestamp": "2024-06-01T00:30:00+01:00"}, user_id="u"
    )
    record = mem.update(ident, text="I got the keys yesterday")
    assert record.time_mentions[0].label() == "31 May 2024"


# -- reads never wait for writes -----------------------------------------------------------------


def test_a_search_in_one_scope_does_not_wait_for_a_long_add_in_another(tmp_path: Path) -> None:
    release, started = threading.Event(), threading.Event()

    class Slow(TestEmbedder):
        def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
            if any("bulk" in t for t in texts):
                started.set()
                release.wait(timeout=20)
            return super().embed_batch(texts)

    with Memory(tmp_path / "m.db", embedder=Slow(64)) as mem:
        (ident,) = mem.add("kayak trip to the lake", user_id="reader")
        writer = threading.Thread(
            target=mem.add,
            args=([f"bulk message {i}" for i in range(50)],),
            kwargs={"user_id": "w"},
        )
        writer.start()
        assert started.wait(timeout=20)
        hits = mem.search("kayak", user_id="reader")  # would block here if reads took the lane
        listed = mem.list(user_id="w").items  # the episodes are already committed
        release.set()
        writer.join()
    assert [h.id for h in hits] == [ident]
    assert len(listed) == 50


def test_embedder_mismatch_says_what_to_do_in_the_library() -> None:
    from engramdb.errors import EmbedderMismatch

    text = str(EmbedderMismatch("x.db", "local:a", "test:64"))
    assert "engram reembed" not in text and "reembed=True" in text
    assert "engram" not in str(MemoryNotFound("abc")).replace("engramdb", "")
