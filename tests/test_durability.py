"""Crash safety: SIGKILL in the middle of ingest loses no acknowledged write and leaves no
half-written batch."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engramdb import Memory

WRITER = textwrap.dedent("""
    import os, sys
    from engramdb import Memory
    path, log = sys.argv[1], sys.argv[2]
    mem = Memory(path, embedder="test")
    start = int(sys.argv[3])
    with open(log, "a", encoding="utf-8") as out:
        for batch in range(start, start + 100000):
            messages = [{"role": "user", "content": f"batch {batch} message {i} " + "x" * 200,
                         "metadata": {"batch": batch}} for i in range(5)]
            ids = mem.add(messages, user_id="u", session_id=f"s{batch % 7}")
            # Only what add() returned counts as acknowledged: log it durably after.
            out.write(" ".join(ids) + "\\n")
            out.flush()
            os.fsync(out.fileno())
""")


@pytest.mark.slow
def test_sigkill_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db, log, script = tmp_path / "crash.db", tmp_path / "acked.log", tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(7)
    for round_ in range(12):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db), str(log), str(round_ * 100000)],
            env={**os.environ},
        )
        time.sleep(rng.uniform(0.8, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    acked = [i for line in log.read_text().splitlines() if line.strip() for i in line.split()]
    assert len(acked) > 50, "the writer never got going; the test proves nothing"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        batches = conn.execute(
            "SELECT json_extract(metadata, '$.batch'), COUNT(*) FROM memories GROUP BY 1"
        ).fetchall()
        assert all(count == 5 for _, count in batches), "a batch was half-written"
        vectors = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        memories = conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
        pending = conn.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'embed'").fetchone()[0]
        # Episode first: a kill between the episodes' commit and their vectors' leaves jobs.
        assert vectors + pending == memories
    with Memory(db, embedder="test") as mem:
        mem.process()
        assert mem.stats()["jobs_pending"] == 0
        for ident in acked:
            mem.get(ident)  # raises MemoryNotFound if an acknowledged write was lost
        history = {e.memory_id for i in acked[:50] for e in mem.history(i)}
        assert history == set(acked[:50])
        # The derived indexes rebuild from what survived.
        assert mem.search("batch message", user_id="u", limit=5)
