"""Adversarial audit of the rewritten core: identity, episode-first writes, deletes, tenants,
reads beside writes, cursors, export/import, time, migrations and the error surface.

Every test states a claim of the README / docs/architecture.md and attacks it with real SQLite
files and the deterministic test embedder (subclassed for failure injection). A failing test is
a finding; the passing ones guard behaviour that matters.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engramdb import Memory
from engramdb.backends.sqlite import SQLiteStore
from engramdb.embedders.test import TestEmbedder
from engramdb.errors import (
    EngramError,
    IdConflict,
    ImportFormatError,
    InvalidCursor,
    MemoryNotFound,
    StoreError,
)
from engramdb.pipeline.keys import embed_text

T0 = "2024-05-28T09:00:00+00:00"
#: Not a hex string: "4831" alone turns up inside random uuids and sha256 hashes.
SECRET = "4831qz"
#: A word no other text uses, so its stem cannot come from anywhere else.
RARE = "zanzibarite"
REPO = Path(__file__).resolve().parents[1]


# -- helpers -------------------------------------------------------------------------------------


class Switchable(TestEmbedder):
    """The deterministic embedder, switchable into the ways a real one fails."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__(dim)
        self.mode: str | None = None
        self.calls = 0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = super().embed_batch(texts)
        if self.mode == "raise":
            raise ConnectionError("embedding server unreachable")
        if self.mode == "wrong_dim":
            return np.ones((len(texts), self.dim + 3), dtype=np.float32)
        if self.mode == "missing_rows":
            return out[:-1]
        if self.mode == "nan":
            out[:] = np.nan
        if self.mode == "inf":
            out[:] = np.inf
        return out

    def embed(self, texts: Sequence[str]) -> Any:
        if self.mode == "ragged_list":  # an embedder overriding embed() itself, badly
            return [[0.5] * (self.dim - 1 + (i % 2)) for i in range(len(texts))]
        return super().embed(texts)


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _where_secret(mem: Memory, folder: Path) -> dict[str, Any]:
    """Which files still hold the secret, and whether the store knows its scrub is pending."""
    return {
        "scrub_pending": mem.stats()["scrub_pending"],
        "files": {
            p.name: p.stat().st_size for p in folder.iterdir() if SECRET.encode() in p.read_bytes()
        },
    }


def _count(path: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def _vectors(path: Path) -> dict[str, bytes]:
    conn = sqlite3.connect(path)
    try:
        return dict(
            conn.execute("SELECT m.id, v.vec FROM memories m JOIN vectors v ON v.rid = m.rid")
        )
    finally:
        conn.close()


def _keys(mem: Memory, ident: str) -> Any:
    return mem._store.get(mem.tenant, [ident])[0].keys


def _lexical(mem: Memory, query: str, **scope: Any) -> list[str]:
    """Ids a search finds by their words (dense search ranks every record, relevant or not)."""
    return [h.id for h in mem.search(query, **scope, limit=100) if "lexical" in h.explain]


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "store"
    out.mkdir()
    return out


def _secret_conversation(mem: Memory, user: str = "u") -> list[str]:
    return mem.add(
        [
            {"role": "user", "name": "Ana", "content": f"My PIN is {SECRET}, a {RARE} code",
             "timestamp": T0, "metadata": {"note": f"pin {SECRET}"}},
            {"role": "assistant", "content": "Stored. Anything else?"},
            {"role": "user", "name": "Ana", "content": "No, thanks"},
        ],
        user_id=user,
        session_id="s",
    )  # fmt: skip


# == Identity ====================================================================================


def test_untimed_repeats_are_new_events_in_one_batch_and_across_batches(mem: Memory) -> None:
    ids = mem.add(["yes", "yes", "yes"], user_id="u", session_id="s")
    ids += mem.add("yes", user_id="u", session_id="s")
    ids += mem.add({"role": "assistant", "content": "yes"}, user_id="u", session_id="s")
    assert len(set(ids)) == 5
    assert len(mem.list(user_id="u").items) == 5


@pytest.mark.parametrize(
    "spelling",
    [
        "2024-05-28T09:00:00Z",
        "2024-05-28t09:00:00z",
        "2024-05-28 09:00:00Z",
        "2024-05-28T09:00Z",
        "2024-05-28T09:00:00.000000+00:00",
        "2024-05-28T11:00:00+02:00",
        "2024-05-28T11:00:00+0200",
        "2024-05-28T04:00:00-05:00",
        "1716886800",
        1716886800,
        1716886800.0,
        datetime(2024, 5, 28, 9, 0, tzinfo=UTC),
        datetime(2024, 5, 28, 18, 0, tzinfo=timezone(timedelta(hours=9))),
    ],
)
def test_the_same_instant_in_any_spelling_is_one_event(mem: Memory, spelling: object) -> None:
    (first,) = mem.add(
        {"content": "I moved to Porto", "timestamp": T0}, user_id="u", session_id="s"
    )
    (again,) = mem.add(
        {"content": "I moved to Porto", "timestamp": spelling}, user_id="u", session_id="s"
    )
    assert again == first
    assert len(mem.list(user_id="u", kind="message").items) == 1


def test_a_different_instant_session_speaker_or_scope_is_another_event(mem: Memory) -> None:
    base = {"content": "I moved to Porto", "timestamp": T0}
    (first,) = mem.add(base, user_id="u", session_id="s")
    others = [
        mem.add({**base, "timestamp": "2024-05-28T09:00:00.001Z"}, user_id="u", session_id="s"),
        mem.add(base, user_id="u", session_id="s2"),
        mem.add({**base, "name": "Ana"}, user_id="u", session_id="s"),
        mem.add({**base, "role": "assistant"}, user_id="u", session_id="s"),
        mem.add(base, user_id="u", agent_id="a", session_id="s"),
    ]
    assert first not in {o[0] for o in others}
    assert len({o[0] for o in others}) == 5


def test_caller_ids_dedupe_exactly_and_a_conflict_stores_nothing(mem: Memory) -> None:
    assert mem.add({"id": "m-1", "content": "hello"}, user_id="u") == ["m-1"]
    assert mem.add({"id": "m-1", "content": "hello"}, user_id="u") == ["m-1"]
    # Same id, other content: refused, and nothing else of the batch is stored.
    with pytest.raises(IdConflict):
        mem.add([{"id": "m-2", "content": "fresh"}, {"id": "m-1", "content": "changed"}],
                user_id="u")  # fmt: skip
    with pytest.raises(MemoryNotFound):
        mem.get("m-2")
    # Same id in another scope of the tenant: refused.
    with pytest.raises(IdConflict):
        mem.add({"id": "m-1", "content": "hello"}, user_id="v")
    # An id given twice in one batch with the same content is one memory.
    assert mem.add([{"id": "m-3", "content": "a"}, {"id": "m-3", "content": "a"}],
                   user_id="u") == ["m-3", "m-3"]  # fmt: skip
    assert sorted(r.id for r in mem.list(user_id="u").items) == ["m-1", "m-3"]


def test_concurrent_adds_lose_nothing_and_fold_only_the_same_event(mem: Memory) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(12)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            batch = [
                {"content": "same event", "timestamp": T0},
                {"role": "assistant", "content": "same reply"},
                {"id": "caller-1", "content": "by id"},
            ]
            results.append(mem.add(batch, user_id="u", session_id="s"))
            results.append(mem.add(f"untimed {n}", user_id="u", session_id="s"))
            results.append(mem.add("yes", user_id="u", session_id="s"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    batches = [r for r in results if len(r) == 3]
    assert len({tuple(b) for b in batches}) == 1
    assert batches[0][2] == "caller-1"
    items = mem.list(user_id="u", limit=1000).items
    # 3 from the batch, 12 distinct untimed notes, 12 "yes" (each a new event)
    assert len(items) == 3 + 12 + 12
    assert len({r.id for r in items}) == len(items)


def test_ids_are_per_tenant_and_an_export_imports_into_another_tenant(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder="test", tenant="a") as a:
        a.add({"id": "shared", "content": "tenant a's words", "timestamp": T0}, user_id="u")
        with (tmp_path / "a.jsonl").open("w", encoding="utf-8") as fh:
            a.export(fh)
    with Memory(db, embedder="test", tenant="b") as b:
        assert b.add({"id": "shared", "content": "tenant b's words"}, user_id="u") == ["shared"]
        with pytest.raises(IdConflict):  # in b the id names b's own memory, with other content
            b.import_file(tmp_path / "a.jsonl")
    with Memory(db, embedder="test", tenant="c") as c:
        assert c.import_file(tmp_path / "a.jsonl") == 1
        assert c.import_file(tmp_path / "a.jsonl") == 0
        assert c.get("shared").text == "tenant a's words"
    with Memory(db, embedder="test", tenant="a") as a:
        assert a.get("shared").text == "tenant a's words"


_RACE = textwrap.dedent(
    """
    import os, sys, time, json
    from engramdb import Memory
    path, go, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        with Memory(path, embedder="test") as mem:
            ids = mem.add([{"content": "same event", "timestamp": "2024-05-28T09:00:00Z"},
                           {"role": "assistant", "content": "same reply"},
                           {"id": "caller-7", "content": "by id"}],
                          user_id="u", session_id="s")
        print(json.dumps(ids))
    except BaseException as exc:
        print("ERROR", type(exc).__name__, exc)
        sys.exit(3)
    """
)


def _race_two_processes(tmp_path: Path, db: Path, rounds: int) -> list[str]:
    failures = []
    for r in range(rounds):
        go = tmp_path / f"go{r}"
        ready = [tmp_path / f"ready{r}-{i}" for i in range(2)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _RACE, str(db), str(go), str(ready[i])],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(2)
        ]
        deadline = time.time() + 60
        while not all(p.exists() for p in ready) and time.time() < deadline:
            time.sleep(0.01)
        go.touch()
        outs = [p.communicate(timeout=120)[0].strip() for p in procs]
        if any(p.returncode != 0 for p in procs) or outs[0] != outs[1]:
            failures.append(f"round {r}: {outs}")
        if db.exists() and _count(db, "SELECT COUNT(*) FROM memories") != 3:
            failures.append(f"round {r}: {_count(db, 'SELECT COUNT(*) FROM memories')} rows")
    return failures


@pytest.mark.slow
def test_two_processes_adding_the_same_event_to_one_store_get_one_id(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    Memory(db, embedder="test").close()  # the store exists before the race
    assert _race_two_processes(tmp_path, db, rounds=4) == []


@pytest.mark.slow
def test_two_processes_opening_a_new_store_at_once_both_work(tmp_path: Path) -> None:
    """Two workers started together on a path that does not exist yet (a fresh deployment):
    each must open the store, not fail with 'is not an engramdb store: table meta already
    exists' because both ran the first migration."""
    failures = []
    for r in range(6):
        work = tmp_path / f"r{r}"
        work.mkdir()
        failures += _race_two_processes(work, work / "fresh.db", rounds=1)
    assert failures == []


# == Episode first ===============================================================================

FAILURES = ["raise", "wrong_dim", "missing_rows", "nan", "inf", "ragged_list"]


@pytest.mark.parametrize("mode", FAILURES)
def test_a_failing_embedder_during_add_loses_nothing_and_process_finishes(
    tmp_path: Path, mode: str
) -> None:
    emb = Switchable()
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        emb.mode = mode
        ids = mem.add(
            [{"content": "I adopted a beagle called Rex", "timestamp": T0},
             {"role": "assistant", "content": "What a lovely name"}],
            user_id="u", session_id="s",
        )  # fmt: skip
        assert [mem.get(i).text for i in ids] == ["I adopted a beagle called Rex",
                                                  "What a lovely name"]  # fmt: skip
        assert mem.stats()["jobs_pending"] == 2
        assert _vectors(tmp_path / "m.db") == {}
        emb.mode = None
        assert mem.search("beagle", user_id="u")[0].id == ids[0]
        report = mem.process()
        assert (report.done, report.failed) == (2, 0)
        assert mem.stats()["jobs_pending"] == 0
    vectors = _vectors(tmp_path / "m.db")
    assert set(vectors) == set(ids)
    for vec in vectors.values():
        assert np.isfinite(np.frombuffer(vec, dtype=np.float32)).all()


@pytest.mark.parametrize("mode", FAILURES)
def test_a_failing_embedder_during_update_delete_and_import_half_writes_nothing(
    tmp_path: Path, mode: str
) -> None:
    emb = Switchable()
    folder = tmp_path / "store"
    with Memory(folder / "m.db", embedder=emb) as mem:
        secret, reply, last = _secret_conversation(mem)
        with (tmp_path / "x.jsonl").open("w", encoding="utf-8") as fh:
            mem.export(fh)
        emb.mode = mode
        record = mem.update(reply, text="Stored it. Anything else, Ana?")
        assert record.text == "Stored it. Anything else, Ana?"
        mem.delete(secret)
        assert SECRET.encode() not in _files(folder), _where_secret(mem, folder)
        with pytest.raises(MemoryNotFound):
            mem.get(secret)
        emb.mode = None
        mem.process()
        assert mem.stats()["jobs_pending"] == 0
        assert set(_vectors(folder / "m.db")) == {reply, last}
    with Memory(tmp_path / "b.db", embedder=emb) as other:
        emb.mode = mode
        assert other.import_file(tmp_path / "x.jsonl") == 3
        assert other.stats()["jobs_pending"] == 3
        emb.mode = None
        assert other.process().done == 3
    assert _vectors(tmp_path / "b.db").keys() == {secret, reply, last}


def test_one_record_the_embedder_rejects_does_not_block_the_others_forever(
    tmp_path: Path,
) -> None:
    """An embedder that refuses one input (too long, content filter, a tokenizer bug) fails the
    whole batch; process() retries the same batch and the good records never get vectors."""

    class RejectsOne(TestEmbedder):
        def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
            if any(t.startswith("this one is REJECTED") for t in texts):
                raise ValueError("input rejected by the embedding service")
            return super().embed_batch(texts)

    with Memory(tmp_path / "m.db", embedder=RejectsOne(64)) as mem:
        ids = mem.add(["I adopted a beagle", "this one is REJECTED", "we cooked pasta"],
                      user_id="u")  # fmt: skip
        for _ in range(3):
            mem.process()
        pending = mem.stats()["jobs_pending"]
    assert set(_vectors(tmp_path / "m.db")) == {ids[0], ids[2]}
    assert pending == 1


class _FillsTheDisk(TestEmbedder):
    """While the episodes' transaction is already committed, the disk fills up (simulated with
    PRAGMA max_page_count on the writer connection)."""

    store: SQLiteStore | None = None

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        assert self.store is not None
        writer = self.store._writer
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        writer.execute(f"PRAGMA max_page_count = {pages}")
        return super().embed_batch(texts)


def test_a_full_disk_after_the_episodes_commit_does_not_make_add_fail(tmp_path: Path) -> None:
    """add() commits the episodes first. If storing the vectors then fails (disk full), the
    episodes are stored: add() must return their ids (the vectors stay pending), not raise,
    or a caller's retry of untimed messages stores every message twice."""
    emb = _FillsTheDisk(384)
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        emb.store = mem._store
        messages = [f"message number {i} " + "x" * 200 for i in range(40)]
        try:
            ids = mem.add(messages, user_id="u")
        except EngramError:
            ids = None
        except Exception as exc:
            pytest.fail(f"add() leaked {type(exc).__module__}.{type(exc).__name__}: {exc}")
        mem._store._writer.execute("PRAGMA max_page_count = 1073741823")
        assert ids is not None and len(ids) == 40, "add() raised although it stored the batch"
        assert len(mem.list(user_id="u", limit=100).items) == 40


def test_a_full_disk_refuses_the_write_with_a_store_error_and_stores_nothing(
    tmp_path: Path,
) -> None:
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        ids = mem.add([f"message {i} " + "x" * 500 for i in range(20)], user_id="u")
        writer = mem._store._writer
        writer.execute(
            f"PRAGMA max_page_count = {writer.execute('PRAGMA page_count').fetchone()[0]}"
        )
        leaked = []
        for call in (
            lambda: mem.add([f"more {i} " + "y" * 3000 for i in range(40)], user_id="u"),
            lambda: mem.update(ids[0], text="z" * 20000),
        ):
            try:
                call()
            except EngramError:
                pass
            except Exception as exc:
                leaked.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
        writer.execute("PRAGMA max_page_count = 1073741823")
        assert leaked == []
        assert len(mem.list(user_id="u", limit=100).items) == 20
        assert mem.get(ids[0]).text.startswith("message 0")
        mem.add("the disk has room again", user_id="u")  # the store still works


_KILLED = textwrap.dedent(
    """
    import sys, time, pathlib
    import numpy as np
    from engramdb import Memory
    from engramdb.embedders.test import TestEmbedder
    path, marker = sys.argv[1], sys.argv[2]
    class Hangs(TestEmbedder):
        def embed_batch(self, texts):
            pathlib.Path(marker).write_text("embedding")
            time.sleep(120)
    mem = Memory(path, embedder=Hangs(64))
    mem.add([{"content": "I moved to Porto", "timestamp": "2024-05-28T09:00:00Z"},
             {"role": "assistant", "content": "How exciting"}], user_id="u", session_id="s")
    """
)


def test_sigkill_between_the_episode_and_the_vector_leaves_a_resumable_job(
    tmp_path: Path,
) -> None:
    db, marker = tmp_path / "m.db", tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(db), str(marker)])
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert marker.exists(), "the writer never reached the embedder"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Memory(db, embedder="test") as mem:
        texts = [r.text for r in mem.list(user_id="u").items]
        assert texts == ["I moved to Porto", "How exciting"]
        assert mem.stats()["jobs_pending"] == 4  # two vectors, two extractions
        assert mem.search("Porto", user_id="u")[0].text == "I moved to Porto"
        report = mem.process()
        assert (report.done, report.extracted, report.facts_added) == (2, 2, 1)
        assert mem.search("Porto", user_id="u")[0].explain.get("dense") is not None
        # Re-sending the batch after the crash stores nothing twice.
        mem.add(
            [
                {"content": "I moved to Porto", "timestamp": "2024-05-28T09:00:00Z"},
                {"role": "assistant", "content": "How exciting"},
            ],
            user_id="u",
            session_id="s",
        )
        assert len(mem.list(user_id="u", kind="message").items) == 2
        assert len(mem.facts(user_id="u").items) == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_update_while_the_embed_job_runs_never_stores_a_vector_of_stale_keys(
    tmp_path: Path,
) -> None:
    started, release = threading.Event(), threading.Event()

    class Slow(TestEmbedder):
        def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
            if any("Rex" in t for t in texts):
                started.set()
                release.wait(timeout=20)
            return super().embed_batch(texts)

    emb = Slow(64)
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        out: list[list[str]] = []
        writer = threading.Thread(
            target=lambda: out.append(
                mem.add(
                    ["I adopted a beagle called Rex", "What a lovely dog"],
                    user_id="u",
                    session_id="s",
                )
            )
        )
        writer.start()
        assert started.wait(timeout=20)
        first, reply = (r.id for r in mem.list(user_id="u").items)
        mem.update(first, text="I adopted a beagle called Max")
        release.set()
        writer.join()
        mem.process()
        assert mem.stats()["jobs_pending"] == 0
        stored = _vectors(tmp_path / "m.db")
        for ident in (first, reply):
            expected = emb.embed([embed_text(_keys(mem, ident))])[0]
            assert np.allclose(np.frombuffer(stored[ident], dtype=np.float32), expected), ident
        assert _lexical(mem, "Rex", user_id="u") == []


# == Delete: the text leaves every file ==========================================================


def _assert_gone(folder: Path) -> None:
    blob = _files(folder)
    assert SECRET.encode() not in blob
    assert RARE[:8].encode() not in blob  # the word or its stem


def test_delete_leaves_the_text_in_no_file_keys_vectors_history_or_jobs(folder: Path) -> None:
    emb = Switchable()
    with Memory(folder / "m.db", embedder=emb) as mem:
        secret, reply, _ = _secret_conversation(mem)
        big = mem.add(f"a long note {RARE} " + ("lorem ipsum " * 2400) + SECRET, user_id="u")[0]
        mem.update(secret, text=f"My PIN is {SECRET}, the {RARE} one", metadata={"x": SECRET})
        old_reply_vector = _vectors(folder / "m.db")[reply]
        mem.delete(secret)
        mem.delete(big)
        _assert_gone(folder)
        assert SECRET not in _keys(mem, reply).context_text
        assert _vectors(folder / "m.db")[reply] != old_reply_vector
        assert all(h.before is None and h.after is None for h in mem.history(secret))
        assert [h.id for h in mem.search(f"{SECRET} {RARE}", user_id="u")
                if h.id in (secret, big)] == []  # fmt: skip
    _assert_gone(folder)


def test_delete_all_leaves_the_text_in_no_file(folder: Path) -> None:
    with Memory(folder / "m.db", embedder="test") as mem:
        _secret_conversation(mem)
        kept = mem.add("a memory of another user", user_id="v")[0]
        assert mem.delete_all(user_id="u") == 3
        _assert_gone(folder)
        assert mem.list(user_id="u").items == []
        assert mem.get(kept).text == "a memory of another user"
    _assert_gone(folder)


def test_delete_of_a_batch_written_out_of_time_order_leaves_no_quote(folder: Path) -> None:
    """A batch whose timestamps are not in list order (a client sorting by id, an import of
    newest-first history): each message is keyed with the one before it *in the list*, but a
    delete re-keys only the one after it *in time*. The reply keeps quoting the deleted text."""
    with Memory(folder / "m.db", embedder="test") as mem:
        secret, reply = mem.add(
            [{"content": f"My PIN is {SECRET}", "timestamp": "2024-05-28T10:00:00Z"},
             {"role": "assistant", "content": "noted", "timestamp": "2024-05-28T09:00:00Z"}],
            user_id="u", session_id="s",
        )  # fmt: skip
        mem.delete(secret)
        assert SECRET not in _keys(mem, reply).context_text
        assert _lexical(mem, SECRET, user_id="u") == []
        _assert_gone_secret_only(folder)


def _assert_gone_secret_only(folder: Path) -> None:
    assert SECRET.encode() not in _files(folder)


def test_delete_of_a_message_between_stored_ones_of_a_later_batch_leaves_no_quote(
    folder: Path,
) -> None:
    """Stored: X at 10:00. Then a batch [A at 09:00, B at 11:00]: B is keyed with A (the list
    before it) though X lies between them in time. Deleting A re-keys X, not B."""
    with Memory(folder / "m.db", embedder="test") as mem:
        mem.add({"content": "Morning, all", "timestamp": "2024-05-28T10:00:00Z"},
                user_id="u", session_id="s")  # fmt: skip
        secret, later = mem.add(
            [{"content": f"My PIN is {SECRET}", "timestamp": "2024-05-28T09:00:00Z"},
             {"role": "assistant", "content": "noted", "timestamp": "2024-05-28T11:00:00Z"}],
            user_id="u", session_id="s",
        )  # fmt: skip
        mem.delete(secret)
        assert SECRET not in _keys(mem, later).context_text
        _assert_gone_secret_only(folder)


def test_delete_of_a_message_quoted_by_a_turn_a_later_batch_skipped_leaves_no_quote(
    folder: Path,
) -> None:
    """Stored: P at 08:00 (the secret), X at 10:00 quoting P. A batch [A at 09:00, B at 11:00]
    spans X: A now follows P and X follows A, but only the turn after B is re-keyed, so X
    still quotes P. Deleting P re-keys A (its neighbour in time), not X."""
    with Memory(folder / "m.db", embedder="test") as mem:
        secret, x = mem.add(
            [{"content": f"My PIN is {SECRET}", "timestamp": "2024-05-28T08:00:00Z"},
             {"role": "assistant", "content": "noted", "timestamp": "2024-05-28T10:00:00Z"}],
            user_id="u", session_id="s",
        )  # fmt: skip
        mem.add(
            [{"content": "by the way", "timestamp": "2024-05-28T09:00:00Z"},
             {"content": "and later", "timestamp": "2024-05-28T11:00:00Z"}],
            user_id="u", session_id="s",
        )  # fmt: skip
        mem.delete(secret)
        assert SECRET not in _keys(mem, x).context_text
        _assert_gone_secret_only(folder)


def test_update_of_a_batch_written_out_of_time_order_rekeys_the_quoting_turn(mem: Memory) -> None:
    first, reply = mem.add(
        [{"content": f"My PIN is {SECRET}", "timestamp": "2024-05-28T10:00:00Z"},
         {"role": "assistant", "content": "noted", "timestamp": "2024-05-28T09:00:00Z"}],
        user_id="u", session_id="s",
    )  # fmt: skip
    mem.update(first, text="My PIN is private")
    assert SECRET not in _keys(mem, reply).context_text
    assert _lexical(mem, SECRET, user_id="u") == []


def test_update_rekeys_the_next_turn_and_its_vector(folder: Path) -> None:
    with Memory(folder / "m.db", embedder="test") as mem:
        secret, reply, _ = _secret_conversation(mem)
        before = _vectors(folder / "m.db")[reply]
        mem.update(secret, text="My PIN is private")
        assert SECRET not in _keys(mem, reply).context_text
        assert "private" in _keys(mem, reply).context_text
        assert _vectors(folder / "m.db")[reply] != before
        assert _lexical(mem, RARE, user_id="u") == []


def test_a_failed_embed_job_keeps_no_quote_of_a_deleted_message(folder: Path) -> None:
    """Embedding services often quote the rejected input in their error. The error of a batch
    is stored on every job of it, so a deleted message's text survives in the last_error of
    other records' jobs (other sessions, other users of the tenant)."""

    class Echoes(TestEmbedder):
        down = True

        def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
            if self.down:
                raise ValueError(f"service rejected input {list(texts)!r}")
            return super().embed_batch(texts)

    with Memory(folder / "m.db", embedder=Echoes(64)) as mem:
        (secret,) = mem.add(f"My PIN is {SECRET}", user_id="u", session_id="s1")
        mem.add("the weather is fine", user_id="w", session_id="s2")
        mem.process()  # both in one batch: one error, quoting both, on both jobs
        mem.delete(secret)
        _assert_gone_secret_only(folder)


def test_deleted_text_leaves_the_files_once_an_outside_reader_lets_go(folder: Path) -> None:
    """A reader (another process, a backup) holding a snapshot keeps the old pages; once it
    ends, nothing retries the scrub until the next write: an idle store keeps the deleted text
    in its files indefinitely."""
    with Memory(folder / "m.db", embedder="test") as mem:
        secret, _, _ = _secret_conversation(mem)
        reader = sqlite3.connect(folder / "m.db")
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM memories").fetchone()
        mem.delete(secret)
        reader.execute("COMMIT")
        reader.close()
        # Reads only: search, list, stats. No further write.
        mem.search("PIN", user_id="u")
        mem.list(user_id="u")
        mem.stats()
        _assert_gone(folder)


def test_deleted_text_leaves_the_files_with_a_busy_reader_thread_of_the_same_memory(
    folder: Path,
) -> None:
    with Memory(folder / "m.db", embedder="test") as mem:
        ids = [_secret_conversation(mem, user=f"u{i}")[0] for i in range(5)]
        mem.add([f"filler {i} about kayaks" for i in range(300)], user_id="u0")
        stop = threading.Event()
        errors: list[BaseException] = []

        def read() -> None:
            while not stop.is_set():
                try:
                    mem.search("kayak PIN", user_id="u0")
                    mem.list(user_id="u0", limit=200)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for ident in ids:
            mem.delete(ident)
        stop.set()
        for t in threads:
            t.join()
        assert not errors
        _assert_gone(folder)


# == Tenants =====================================================================================


def test_no_path_leads_from_one_tenant_to_another(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder="test", tenant="a") as a:
        a_ids = a.add(
            [{"id": "same-id", "content": f"tenant a secret {SECRET}", "timestamp": T0},
             {"role": "assistant", "content": "a reply"}],
            user_id="u", session_id="s",
        )  # fmt: skip
        a.add([f"a note {i}" for i in range(5)], user_id="u")
        a_cursor = a.list(user_id="u", limit=2).next_cursor
    with Memory(db, embedder="test", tenant="b") as b:
        b.add([{"id": "other", "content": "tenant b words"}], user_id="u", session_id="s")
        for ident in a_ids:
            with pytest.raises(MemoryNotFound):
                b.get(ident)
            with pytest.raises(MemoryNotFound):
                b.history(ident)
            with pytest.raises(MemoryNotFound):
                b.update(ident, text="overwritten by b")
            with pytest.raises(MemoryNotFound):
                b.delete(ident)
        assert [r.id for r in b.list(user_id="u", limit=100).items] == ["other"]
        assert all(SECRET not in h.text for h in b.search(f"secret {SECRET}", user_id="u"))
        assert SECRET not in b.context(f"secret {SECRET}", user_id="u")
        with pytest.raises(InvalidCursor):
            b.list(user_id="u", cursor=a_cursor)
        out = io.StringIO()
        b.export(out)
        assert SECRET not in out.getvalue()
        assert b.delete_all(user_id="u") == 1
        assert b.stats()["memories"] == 0
        # b re-using a's ids is fine and touches nothing of a's
        assert b.add({"id": "same-id", "content": "b's own"}, user_id="u") == ["same-id"]
        b.delete("same-id")
        b.process()
    with Memory(db, embedder="test", tenant="a") as a:
        assert a.get("same-id").text == f"tenant a secret {SECRET}"
        assert [h.event for h in a.history("same-id")] == ["create"]
        assert a.history("same-id")[0].after is not None
        assert len(a.list(user_id="u", limit=100).items) == 7
        assert a.list(user_id="u", cursor=a_cursor).items


# == Reads never wait for writes =================================================================


def test_reads_in_any_scope_do_not_wait_for_an_open_write_transaction(mem: Memory) -> None:
    from engramdb.pipeline import messages as msgs

    (kept,) = mem.add("kayak trip to the lake", user_id="reader")
    mem.add("writer first", user_id="w")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        rows = msgs.prepare(
            msgs.normalise([f"bulk {i}" for i in range(200)]), scope=mem._scope("add", "w", None),
            session_id=None, metadata=None, max_chars=10**6, now=datetime.now(UTC),
        )  # fmt: skip
        with mem._store.transaction() as tx:
            tx.insert(rows, "test")
            held.set()
            release.wait(timeout=20)

    writer = threading.Thread(target=hold)
    writer.start()
    try:
        assert held.wait(timeout=20)
        # Each read must finish while the write transaction is still open: the writer holds it
        # until `release`, so a read that waited for it would hang here, not merely run slow.
        done: list[str] = []
        for name, call in {
            "search other scope": lambda: mem.search("kayak", user_id="reader"),
            "search same scope": lambda: mem.search("writer", user_id="w"),
            "list": lambda: mem.list(user_id="w"),
            "get": lambda: mem.get(kept),
            "history": lambda: mem.history(kept),
            "stats": lambda: mem.stats(),
            "context": lambda: mem.context("kayak", user_id="reader"),
            "new thread": lambda: _in_new_thread(lambda: mem.search("kayak", user_id="reader")),
        }.items():
            reader = threading.Thread(target=lambda c=call, n=name: (c(), done.append(n)))
            reader.start()
            reader.join(timeout=15)
            assert not reader.is_alive(), f"{name} waited for the open write transaction"
        assert writer.is_alive()  # the transaction was open throughout
    finally:
        release.set()
        writer.join()
    assert len(done) == 8


def _in_new_thread(call: Any) -> None:
    t = threading.Thread(target=call)
    t.start()
    t.join()


class _SlowIndexApply(SQLiteStore):
    """Applying a committed batch to the scope's in-memory indexes takes a while (it does for
    a large batch: 20,000 messages held the cache lock for 0.5-1.9 s on this machine). Here it
    blocks until the test releases it."""

    slow_scopes: frozenset[int] = frozenset()
    applying = threading.Event()
    release = threading.Event()

    def _apply(self, scope_id: int, *args: Any, **kwargs: Any) -> Any:
        if scope_id in self.slow_scopes:
            self.applying.set()
            self.release.wait(timeout=30)
        return super()._apply(scope_id, *args, **kwargs)


def test_a_search_in_one_scope_does_not_wait_for_another_scopes_index_update(
    tmp_path: Path,
) -> None:
    store = _SlowIndexApply(tmp_path / "m.db", dim=64)
    store.applying, store.release = threading.Event(), threading.Event()
    with Memory(store=store, embedder="test") as mem:
        mem.add("kayak trip to the lake", user_id="reader")
        mem.add("writer first", user_id="w")
        mem.search("kayak", user_id="reader")
        mem.search("writer", user_id="w")
        conn = sqlite3.connect(tmp_path / "m.db")
        store.slow_scopes = frozenset(
            {conn.execute("SELECT id FROM scopes WHERE user_id = 'w'").fetchone()[0]}
        )
        conn.close()
        writer = threading.Thread(target=lambda: mem.add("a big import", user_id="w"))
        writer.start()
        try:
            assert store.applying.wait(timeout=30)
            found: list[Any] = []
            reader = threading.Thread(
                target=lambda: found.append(mem.search("kayak", user_id="reader"))
            )
            reader.start()
            reader.join(timeout=15)
            assert not reader.is_alive(), "a search of another scope waited for an index update"
            assert [h.text for h in found[0]] == ["kayak trip to the lake"]
        finally:
            store.release.set()
            writer.join()


def test_searches_beside_adds_updates_and_deletes_never_fail_nor_see_deleted_ids(
    mem: Memory,
) -> None:
    ids = mem.add([f"kayak note number {i}" for i in range(120)], user_id="u", session_id="s")
    deleted_at: dict[str, float] = {}
    lock = threading.Lock()
    errors: list[str] = []
    stale: list[str] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                found = [h.id for h in mem.search("kayak note", user_id="u", limit=200)]
                page = [r.id for r in mem.list(user_id="u", limit=1000).items]
            except BaseException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                gone = {i for i, at in deleted_at.items() if at < started}
            stale.extend(sorted(gone & (set(found) | set(page))))

    def mutate() -> None:
        try:
            for n, ident in enumerate(ids[:60]):
                if n % 3 == 0:
                    mem.update(ids[n + 60], text=f"kayak note corrected {n}")
                mem.add(f"kayak note added {n}", user_id="u", session_id="s")
                mem.delete(ident)
                with lock:
                    deleted_at[ident] = time.monotonic()
        except BaseException as exc:
            errors.append(f"mutate {type(exc).__name__}: {exc}")

    readers = [threading.Thread(target=search) for _ in range(3)]
    for t in readers:
        t.start()
    mutate()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert stale == []


# == Cursors =====================================================================================


def test_a_cursor_survives_deletes_and_other_listings_cursors_are_refused(mem: Memory) -> None:
    ids = mem.add([f"note {i}" for i in range(10)], user_id="u", session_id="s")
    page = mem.list(user_id="u", limit=4)
    mem.delete(ids[3])  # the cursor's own row
    mem.delete(ids[5])
    rest = mem.list(user_id="u", limit=100, cursor=page.next_cursor)
    assert [r.id for r in rest.items] == [i for i in ids[4:] if i != ids[5]]
    mem.add("other", user_id="u", agent_id="a")
    for other in (
        {"user_id": "u", "agent_id": "a"},
        {"user_id": "u", "session_id": "s"},
        {"user_id": "u", "kind": "fact"},
    ):
        with pytest.raises(InvalidCursor):
            mem.list(**other, cursor=page.next_cursor)  # type: ignore[arg-type]
    for garbage in (
        "",
        "x" * 5000,
        "eyJ2IjoxfQ",
        "eyJ2IjoxLCJmIjoiYWJjIiwicCI6LTF9",
        "\u00e9" * 10,
    ):
        with pytest.raises(InvalidCursor):
            mem.list(user_id="u", cursor=garbage)


def test_a_cursor_does_not_skip_memories_added_after_the_tail_was_deleted(mem: Memory) -> None:
    """Row ids are reused when the highest is deleted (no AUTOINCREMENT): a memory added after
    the page's last row and everything after it were deleted takes that row id again, and the
    cursor, which continues after it, skips the new memory."""
    ids = mem.add([f"note {i}" for i in range(4)], user_id="u")
    page = mem.list(user_id="u", limit=2)
    assert page.next_cursor is not None
    for ident in ids[1:]:
        mem.delete(ident)
    (fresh,) = mem.add("written after the deletes", user_id="u")
    rest = mem.list(user_id="u", limit=100, cursor=page.next_cursor)
    assert [r.id for r in rest.items] == [fresh]


def test_deleting_each_pages_last_row_as_it_is_listed_never_ends_the_listing_early(
    mem: Memory,
) -> None:
    """The cursor is the position of a page's last row, read with the page: deleting that row
    right after (as a cleanup job walking the listing would) must not stop the paging."""
    ids = mem.add([f"note {i}" for i in range(9)], user_id="u")
    seen: list[str] = []
    cursor = None
    while True:
        page = mem.list(user_id="u", limit=2, cursor=cursor)
        seen += [r.id for r in page.items]
        if page.items:
            mem.delete(page.items[-1].id)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids


def test_paging_during_concurrent_inserts_has_no_duplicates_or_gaps(mem: Memory) -> None:
    first = mem.add([f"seed {i}" for i in range(50)], user_id="u")
    stop = threading.Event()
    added: list[str] = []

    def insert() -> None:
        n = 0
        while not stop.is_set():
            added.extend(mem.add(f"live {n}", user_id="u"))
            n += 1

    writer = threading.Thread(target=insert)
    writer.start()
    seen: list[str] = []
    cursor = None
    try:
        for _ in range(200):
            page = mem.list(user_id="u", limit=7, cursor=cursor)
            seen += [r.id for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen))
    assert seen[:50] == first
    listed_order = [r.id for r in mem.list(user_id="u", limit=1000).items]
    assert seen == listed_order[: len(seen)]


# == Export / import =============================================================================

ODD_TEXTS = [
    "emoji 🧠 and ZWJ 👩‍👩‍👧 family",
    "line\u2028separator and\u2029paragraph and NEL\u0085 inside",
    "right-to-left: שלום עולם and Arabic مرحبا",
    "combining: e\u0301 vs \u00e9, NUL-free \t tab and \r carriage",
    'quotes " and backslash \\ and {"json": true}',
]


def test_export_import_is_lossless_for_odd_unicode_metadata_sessions_and_offsets(
    tmp_path: Path,
) -> None:
    with Memory(tmp_path / "a.db", embedder="test") as a:
        a.add(
            [{"content": t, "name": "Zoë", "timestamp": f"2024-05-{10 + i}T23:30:00+05:30",
              "metadata": {"ünï": ["ç", 1, 2.5, None, True, {"deep": "🧠"}]}}
             for i, t in enumerate(ODD_TEXTS)],
            user_id="ü", agent_id="агент", session_id="séance",
        )  # fmt: skip
        a.add(["untimed yesterday note", "follows it"], user_id="ü", session_id="s2")
        a.add({"content": "naive local", "timestamp": datetime(2024, 1, 15, 8, 0)}, user_id="ü")
        with (tmp_path / "x.jsonl").open("w", encoding="utf-8") as fh:
            count = a.export(fh)
        records_a = _all_records(a)
        search_a = _searches(a)
        context_a = a.context("what did Zoë say about family?", user_id="ü", agent_id="агент")
    with Memory(tmp_path / "b.db", embedder="test") as b:
        assert b.import_file(tmp_path / "x.jsonl") == count == 8
        assert b.import_file(tmp_path / "x.jsonl") == 0
        assert _all_records(b) == records_a
        assert _searches(b) == search_a
        assert b.context("what did Zoë say about family?", user_id="ü", agent_id="агент") == (
            context_a
        )
    assert _vectors(tmp_path / "a.db") == _vectors(tmp_path / "b.db")


def _all_records(mem: Memory) -> list[tuple[Any, ...]]:
    out = []
    for scope in ({"user_id": "ü", "agent_id": "агент"}, {"user_id": "ü"}):
        for r in mem.list(**scope, limit=1000).items:  # type: ignore[arg-type]
            out.append((r.id, r.text, r.session_id, r.role, r.name, r.occurred_at,
                        r.occurred_at.utcoffset(), r.recorded_at, r.updated_at,
                        json.dumps(r.metadata, sort_keys=True), r.time_mentions))  # fmt: skip
    return out


def _searches(mem: Memory) -> list[list[tuple[str, float]]]:
    return [
        [(h.id, round(h.score, 9)) for h in mem.search(q, **scope)]  # type: ignore[arg-type]
        for q in ("family emoji", "separator paragraph", "yesterday", "naive")
        for scope in ({"user_id": "ü", "agent_id": "агент"}, {"user_id": "ü"})
    ]


def test_a_bad_record_mid_batch_imports_nothing_of_the_batch_and_names_file_and_line(
    tmp_path: Path,
) -> None:
    with Memory(tmp_path / "a.db", embedder="test") as a:
        a.add([f"note {i}" for i in range(5)], user_id="u")
        with (tmp_path / "x.jsonl").open("w", encoding="utf-8") as fh:
            a.export(fh)
    lines = (tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()
    bad_cases = {
        "not json": "{not json",
        "array": "[1, 2]",
        "bad kind": json.dumps({**json.loads(lines[3]), "kind": "rumour"}),
        "bad time": json.dumps({**json.loads(lines[3]), "occurred_at": "soon"}),
        "bad metadata": json.dumps({**json.loads(lines[3]), "metadata": [1]}),
        "no text": json.dumps({k: v for k, v in json.loads(lines[3]).items() if k != "text"}),
        "bad keys": json.dumps({**json.loads(lines[3]), "keys": {"own": 5}}),
    }
    for name, bad in bad_cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.jsonl"
        path.write_text("\n".join([*lines[:3], bad, *lines[4:]]) + "\n", encoding="utf-8")
        with Memory(tmp_path / f"{name.replace(' ', '_')}.db", embedder="test") as b:
            with pytest.raises(ImportFormatError, match=rf"{path.name}:4"):
                b.import_file(path)
            assert b.stats()["memories"] == 0, name


def test_an_id_conflict_mid_import_stores_nothing_of_the_batch_and_names_the_line(
    tmp_path: Path,
) -> None:
    with Memory(tmp_path / "a.db", embedder="test") as a:
        a.add([{"id": f"n{i}", "content": f"note {i}"} for i in range(5)], user_id="u")
        with (tmp_path / "x.jsonl").open("w", encoding="utf-8") as fh:
            a.export(fh)
    with Memory(tmp_path / "b.db", embedder="test") as b:
        b.add({"id": "n3", "content": "a different note under the same id"}, user_id="u")
        with pytest.raises(IdConflict) as info:
            b.import_file(tmp_path / "x.jsonl")
        assert b.stats()["memories"] == 1
        assert "x.jsonl:5" in str(info.value), str(info.value)


# == Time ========================================================================================


def test_a_reply_without_a_timestamp_is_shown_on_the_clock_of_its_conversation(
    mem: Memory,
) -> None:
    """The batch's first message says +01:00; the assistant's reply one millisecond later has
    no offset of its own and is shown in UTC: on the previous day, before the message it answers,
    and its "tomorrow" resolved against the wrong calendar day."""
    mem.add(
        [{"content": "I land in Lisbon tonight", "timestamp": "2024-06-01T00:30:00+01:00"},
         {"role": "assistant", "content": "Great, see you tomorrow then"}],
        user_id="u", session_id="s",
    )  # fmt: skip
    reply = next(r for r in mem.list(user_id="u").items if r.role == "assistant")
    assert reply.occurred_at.utcoffset() == timedelta(hours=1)
    assert reply.time_mentions[0].label() == "2 June 2024"
    text = mem.context("Lisbon tomorrow", user_id="u", as_of="2024-06-02T00:00:00Z")
    assert "(1 June 2024, 00:30) assistant:" in text


def test_naive_datetimes_are_local_across_daylight_saving(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Europe/Lisbon")
    time.tzset()
    try:
        winter, summer = mem.add(
            [{"content": "winter note", "timestamp": datetime(2024, 1, 15, 9, 0)},
             {"content": "summer note", "timestamp": datetime(2024, 7, 15, 9, 0)}],
            user_id="u",
        )  # fmt: skip
        assert mem.get(winter).occurred_at == datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
        assert mem.get(summer).occurred_at.utcoffset() == timedelta(hours=1)
        assert mem.get(summer).occurred_at.astimezone(UTC).hour == 8
        # as_of as a naive datetime is local too
        hits = mem.search("note", user_id="u", as_of=datetime(2024, 7, 15, 9, 0))
        assert {h.id for h in hits} == {winter, summer}
        hits = mem.search("note", user_id="u", as_of=datetime(2024, 7, 15, 8, 59))
        assert {h.id for h in hits} == {winter}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_as_of_since_and_until_bound_event_time(mem: Memory) -> None:
    ids = mem.add(
        [{"content": f"kayak day {d}", "timestamp": f"2024-05-{d:02d}T12:00:00Z"}
         for d in (1, 2, 3, 4)],
        user_id="u",
    )  # fmt: skip

    def found(**kw: Any) -> list[str]:
        return sorted(h.id for h in mem.search("kayak", user_id="u", **kw))

    assert found(as_of="2024-05-02T12:00:00Z") == sorted(ids[:2])
    assert found(as_of="2024-05-02T11:59:59Z") == sorted(ids[:1])
    assert found(filters={"since": "2024-05-02T12:00:00Z"}) == sorted(ids[1:])
    assert found(filters={"since": "2024-05-02", "until": "2024-05-04"}) == sorted(ids[1:3])
    assert found(filters={"since": "2024-05-03T14:00:00+02:00"}) == sorted(ids[2:])


def test_until_includes_its_own_instant_like_as_of_does(mem: Memory) -> None:
    """as_of includes the instant it names; filters['until'] excludes it, so 'until 12:00'
    drops the message said at 12:00 that 'as_of 12:00' keeps."""
    (ident,) = mem.add({"content": "kayak at noon", "timestamp": "2024-05-02T12:00:00Z"},
                       user_id="u")  # fmt: skip
    assert [h.id for h in mem.search("kayak", user_id="u", as_of="2024-05-02T12:00:00Z")] == [ident]
    assert [
        h.id for h in mem.search("kayak", user_id="u", filters={"until": "2024-05-02T12:00:00Z"})
    ] == [ident]


# == Error surface ===============================================================================


def test_every_call_on_a_closed_store_raises_store_error(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "m.db", embedder="test")
    (ident,) = mem.add("hello", user_id="u")
    mem.close()
    mem.close()
    calls = {
        "add": lambda: mem.add("x", user_id="u"),
        "get": lambda: mem.get(ident),
        "list": lambda: mem.list(user_id="u"),
        "search": lambda: mem.search("hello", user_id="u"),
        "context": lambda: mem.context("hello", user_id="u"),
        "update": lambda: mem.update(ident, text="y"),
        "delete": lambda: mem.delete(ident),
        "delete_all": lambda: mem.delete_all(user_id="u"),
        "history": lambda: mem.history(ident),
        "export": lambda: mem.export(io.StringIO()),
        "process": lambda: mem.process(),
        "stats": lambda: mem.stats(),
    }
    wrong = {}
    for name, call in calls.items():
        try:
            call()
            wrong[name] = "no error"
        except StoreError:
            pass
        except BaseException as exc:
            wrong[name] = f"{type(exc).__name__}: {exc}"
    assert wrong == {}


_CLOSE_RACE = textwrap.dedent(
    """
    import io, sys, threading, time
    from engramdb import Memory
    from engramdb.errors import EngramError
    path = sys.argv[1]
    with Memory(path, embedder="test") as mem:
        mem.add([f"note {i} about kayaks and lakes" for i in range(600)], user_id="u")
    leaked = []
    for round_ in range(25):
        mem = Memory(path, embedder="test")
        stop = threading.Event()
        def work(kind):
            while not stop.is_set():
                try:
                    if kind == 0: mem.stats()
                    elif kind == 1: mem.list(user_id="u", limit=50)
                    elif kind == 2: mem.search("kayak lake", user_id="u")
                    else: mem.export(io.StringIO())
                except EngramError:
                    pass
                except BaseException as exc:
                    leaked.append(f"{type(exc).__name__}: {exc}")
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads: t.start()
        time.sleep(0.03 + round_ * 0.002)
        mem.close()
        time.sleep(0.02)
        stop.set()
        for t in threads: t.join()
    print("LEAKED", sorted(set(leaked))[:5])
    """
)


def test_closing_a_memory_while_other_threads_use_it_does_not_crash_the_process(
    tmp_path: Path,
) -> None:
    """close() closes every thread's reader connection, including ones another thread is using
    at that moment: CPython's sqlite3 then crashes with a segmentation fault."""
    result = _run(_CLOSE_RACE, str(tmp_path / "m.db"), timeout=300)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "LEAKED []" in result.stdout, result.stdout


def test_a_store_file_deleted_underneath_fails_writes_instead_of_losing_them(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "store"
    mem = Memory(folder / "m.db", embedder="test")
    try:
        mem.add("first", user_id="u")
        for p in folder.iterdir():
            p.unlink()
        try:
            ids = mem.add("written after the file was removed", user_id="u")
        except StoreError:
            ids = None
        except BaseException as exc:
            pytest.fail(f"leaked {type(exc).__name__}: {exc}")
    finally:
        mem.close()
    with Memory(folder / "m.db", embedder="test") as reopened:
        stored = [r.id for r in reopened.list(user_id="u").items]
    assert ids is None or set(ids) <= set(stored), "add() returned ids of memories that are gone"


def test_a_query_embedder_returning_the_wrong_shape_degrades_instead_of_raising(
    tmp_path: Path,
) -> None:
    emb = Switchable()
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        (ident,) = mem.add("I adopted a beagle called Rex", user_id="u")
        mem.add(["the weather is fine", "we cooked pasta"], user_id="u", session_id="other")
        emb.mode = "ragged_list"
        try:
            hits = mem.search("beagle", user_id="u")
        except EngramError:
            hits = None
        except Exception as exc:
            pytest.fail(f"search() leaked {type(exc).__name__}: {exc}")
        assert hits is not None and hits[0].id == ident
        assert "degraded" in hits[0].explain


def test_a_nan_query_vector_is_treated_as_an_embedder_failure(tmp_path: Path) -> None:
    emb = Switchable()
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        (ident,) = mem.add("I adopted a beagle called Rex", user_id="u")
        mem.add(["the weather is fine", "we cooked pasta"], user_id="u", session_id="other")
        emb.mode = "nan"
        hits = mem.search("beagle", user_id="u")
        assert [h.id for h in hits] == [ident]
        assert "degraded" in hits[0].explain
        assert all(np.isfinite(h.score) for h in hits)


class _PausingStore(SQLiteStore):
    """Pauses a chosen thread right after it read a record (a slow caller, a GC pause)."""

    paused_thread = ""
    has_read = threading.Event()
    resume = threading.Event()

    def get(self, tenant: str, ids: Sequence[str]) -> Any:
        rows = super().get(tenant, ids)
        if threading.current_thread().name == self.paused_thread:
            self.paused_thread = ""
            self.has_read.set()
            self.resume.wait(timeout=20)
        return rows


def test_a_concurrent_metadata_update_does_not_revert_a_text_correction(tmp_path: Path) -> None:
    """update() reads the record, then writes all of it back in a later transaction: a tagger
    that read before a correction committed writes the uncorrected text back (and its vector
    and the next turn's key with it)."""
    store = _PausingStore(tmp_path / "m.db", dim=64)
    store.has_read, store.resume = threading.Event(), threading.Event()
    with Memory(store=store, embedder="test") as mem:
        first, reply = mem.add([f"My PIN is {SECRET}", "ok"], user_id="u", session_id="s")
        store.paused_thread = "tagger"
        tagger = threading.Thread(
            target=mem.update, args=(first,), kwargs={"metadata": {"tag": "pin"}}, name="tagger"
        )
        tagger.start()
        assert store.has_read.wait(timeout=20)
        mem.update(first, text="My PIN is private")
        store.resume.set()
        tagger.join()
        record = mem.get(first)
        assert record.text == "My PIN is private"
        assert record.metadata == {"tag": "pin"}
        assert SECRET not in _keys(mem, reply).context_text


def test_concurrent_metadata_updates_keep_every_key(mem: Memory) -> None:
    (ident,) = mem.add("hello", user_id="u")
    barrier = threading.Barrier(16)

    def tag(key: str) -> None:
        barrier.wait()
        mem.update(ident, metadata={key: True})

    threads = [threading.Thread(target=tag, args=(f"k{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(mem.get(ident).metadata) == sorted(f"k{i}" for i in range(16))


def test_an_update_racing_a_delete_says_not_found(tmp_path: Path) -> None:
    store = _PausingStore(tmp_path / "m.db", dim=64)
    store.has_read, store.resume = threading.Event(), threading.Event()
    with Memory(store=store, embedder="test") as mem:
        (ident,) = mem.add("hello", user_id="u")
        store.paused_thread = "updater"
        errors: list[BaseException] = []

        def update() -> None:
            try:
                mem.update(ident, text="hello again")
            except BaseException as exc:
                errors.append(exc)

        updater = threading.Thread(target=update, name="updater")
        updater.start()
        assert store.has_read.wait(timeout=20)
        mem.delete(ident)
        store.resume.set()
        updater.join()
        assert len(errors) == 1 and isinstance(errors[0], MemoryNotFound), errors
        with pytest.raises(MemoryNotFound):
            mem.get(ident)


# == Migrations ==================================================================================

OLD_COMMIT = "766b99f"
_OLD_WRITER = textwrap.dedent(
    """
    import json, sys
    from engramdb import Memory
    path = sys.argv[1]
    out = {}
    with Memory(path, embedder="test") as mem:
        batch = [
            {"role": "user", "name": "Ana", "content": "I moved to Porto last month",
             "timestamp": "2024-05-28T09:00:00+02:00"},
            {"role": "assistant", "content": "How do you like Porto?"},
            {"role": "user", "name": "Ana", "content": "My PIN is 4831qz, keep it safe"},
            {"role": "assistant", "content": "Stored safely."},
            {"role": "user", "name": "Ana", "content": "I adopted a beagle called Rex yesterday"},
        ]
        out["batch"] = batch
        out["ids"] = mem.add(batch, user_id="ana", session_id="s1")
        out["untimed"] = mem.add(["yes", "took my pills"], user_id="ana")
        out["bob"] = mem.add({"content": "Bob likes kayaking", "timestamp": "2024-05-01T10:00:00Z",
                              "metadata": {"ref": "D1:3", "n": 2}},
                             user_id="bob", agent_id="agent1", session_id="b")
        mem.update(out["ids"][4], text="I adopted a beagle called Max yesterday")
        mem.delete(out["ids"][2])
        out["records"] = {
            scope: [[r.id, r.text, r.occurred_at.timestamp(), r.session_id, r.role, r.name,
                     r.metadata] for r in mem.list(**kw, limit=100).items]
            for scope, kw in (("ana", {"user_id": "ana"}),
                              ("bob", {"user_id": "bob", "agent_id": "agent1"}))
        }
        out["search"] = {q: [h.id for h in mem.search(q, user_id="ana", limit=5)]
                         for q in ("beagle Max", "Porto", "pills")}
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def old_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    if shutil.which("git") is None:
        pytest.skip("git is needed to fetch the old code")
    base = tmp_path_factory.mktemp("old")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", OLD_COMMIT, "src"], capture_output=True
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {OLD_COMMIT} is not available")
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    db = base / "old.db"
    made = subprocess.run(
        [sys.executable, "-c", _OLD_WRITER, str(db)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(base / "src")},
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    return db, json.loads(made.stdout)


@pytest.mark.slow
def test_a_store_of_the_old_code_opens_keeps_everything_and_searches_alike(
    old_store: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    shutil.copy(old_store[0], db)
    old = old_store[1]
    with Memory(db, embedder="test") as mem:
        for scope, kw in (("ana", {"user_id": "ana"}),
                          ("bob", {"user_id": "bob", "agent_id": "agent1"})):  # fmt: skip
            now = [
                [r.id, r.text, r.occurred_at.timestamp(), r.session_id, r.role, r.name, r.metadata]
                for r in mem.list(**kw, limit=100).items  # type: ignore[arg-type]
            ]
            assert now == old["records"][scope]
        for q, ids in old["search"].items():
            assert [h.id for h in mem.search(q, user_id="ana", limit=5)] == ids, q
        assert mem.stats()["jobs_pending"] == 0
        history = mem.history(old["ids"][4])
        assert [h.event for h in history] == ["create", "update"]
        assert [h.event for h in mem.history(old["ids"][2])] == ["create", "delete"]
        assert all(h.before is None and h.after is None for h in mem.history(old["ids"][2]))
        # The store works: write, update, delete, search.
        (new,) = mem.add("a note after the upgrade", user_id="ana")
        mem.update(old["ids"][1], text="How do you like living in Porto?")
        mem.delete(new)
        assert mem.search("living in Porto", user_id="ana")[0].id == old["ids"][1]
    assert SECRET.encode() not in _files(tmp_path)


@pytest.mark.slow
def test_re_sending_a_batch_after_the_upgrade_stores_nothing_twice(
    old_store: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """A batch whose first message has a timestamp is one event per message with the new code
    (replies take its time plus a millisecond), on a fresh store even after a correction. The
    migration marks the replies written by the old code as untimed, and a corrected message by
    its corrected text: re-sending the batch after the upgrade duplicates them."""
    db = tmp_path / "old.db"
    shutil.copy(old_store[0], db)
    old = old_store[1]
    with Memory(db, embedder="test") as mem:
        again = mem.add(old["batch"], user_id="ana", session_id="s1")
        kept = [i for n, i in enumerate(old["ids"]) if n != 2]  # message 2 was deleted
        assert [i for n, i in enumerate(again) if n != 2] == kept
    # The same on a fresh store with the current code, for comparison (this holds):
    with Memory(tmp_path / "fresh.db", embedder="test") as fresh:
        ids = fresh.add(old["batch"], user_id="ana", session_id="s1")
        fresh.update(ids[4], text="I adopted a beagle called Max yesterday")
        assert fresh.add(old["batch"], user_id="ana", session_id="s1") == ids


# == More: other processes, importers ============================================================

_OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from engramdb import Memory
    path, gone, changed = sys.argv[1], sys.argv[2], sys.argv[3]
    with Memory(path, embedder="test") as mem:
        mem.delete(gone)
        mem.update(changed, text="we paddled a canoe across the fjord")
        print(mem.add("a kayak bought by the other process", user_id="u")[0])
    """
)


def test_a_process_sees_deletes_updates_and_adds_of_another_at_once(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder="test") as mem:
        gone, changed, _ = mem.add(
            ["my kayak is red", "kayak trip on the lake", "kayak club on Sunday"], user_id="u"
        )
        assert {h.id for h in mem.search("kayak", user_id="u")} >= {gone, changed}  # loaded
        result = _run(_OTHER_PROCESS, str(db), gone, changed)
        assert result.returncode == 0, result.stderr
        added = result.stdout.strip()
        hits = mem.search("kayak canoe fjord", user_id="u", limit=50)
        assert gone not in {h.id for h in hits}
        assert changed in _lexical(mem, "fjord", user_id="u")
        assert added in _lexical(mem, "bought", user_id="u")
        with pytest.raises(MemoryNotFound):
            mem.get(gone)


def test_a_chatgpt_export_keeps_a_repeated_message_whose_time_is_missing(tmp_path: Path) -> None:
    """Messages without their own create_time all get the conversation's: the same instant. A
    user saying "ok" twice is then one event, and the second "ok" is silently dropped."""

    def node(i: int, role: str, text: str) -> dict[str, Any]:
        return {
            "id": f"n{i}", "parent": f"n{i - 1}" if i else None, "children": [f"n{i + 1}"],
            "message": {"id": f"m{i}", "author": {"role": role}, "create_time": None,
                        "content": {"content_type": "text", "parts": [text]}, "metadata": {}},
        }  # fmt: skip

    nodes = [node(0, "user", "ok"), node(1, "assistant", "Shall I book it?"), node(2, "user", "ok")]
    nodes[-1]["children"] = []
    conversation = {"title": "booking", "create_time": 1716886800.0, "id": "c1",
                    "current_node": "n2", "mapping": {n["id"]: n for n in nodes}}  # fmt: skip
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([conversation]), encoding="utf-8")
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        assert mem.import_file(path, user_id="u") == 3
        assert [r.text for r in mem.list(user_id="u").items] == ["ok", "Shall I book it?", "ok"]
        assert mem.import_file(path, user_id="u") == 0  # and a re-import still stores nothing
