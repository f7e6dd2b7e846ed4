"""Several processes on one store: two `engram serve` replicas take writes while two
`engram worker` processes consolidate them, one worker is killed mid-run and another takes its
place. Nothing acknowledged is lost, and no job is applied twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engramdb import Memory, access
from engramdb.llms.test import TestLLM

pytest.importorskip("uvicorn")

CITIES = [f"Town{n:03d}" for n in range(400)]
USERS = [f"user{n}" for n in range(8)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _engram(db: Path, *args: str, home: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ENGRAM_HOME": str(home),
        "ENGRAM_EMBEDDER": "test",
        "ENGRAM_RATE_LIMIT": "0",
        "ENGRAM_CONSOLIDATE": "deferred",
    }
    cli = [sys.executable, "-m", "engramdb.cli", "--db", str(db), *args]
    return subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/v1/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Path, list[str], str, list[subprocess.Popen[bytes]]]]:
    db = tmp_path / "shared.db"
    with Memory(db, embedder="test") as mem:
        _, key = access.create_key(mem, "writer")
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(2):
            port = _free_port()
            procs.append(_engram(db, "serve", "--port", str(port), "--no-webhooks", home=tmp_path))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        yield db, urls, key, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _write(urls: list[str], key: str, start: int, step: int, out: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=60, headers=headers) as client:
        for n in range(start, len(CITIES), step):
            user = USERS[n % len(USERS)]
            body = {
                "user_id": user,
                "messages": [
                    {
                        "role": "user",
                        "content": f"I moved to {CITIES[n]}.",
                        "timestamp": f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
                    }
                ],
            }
            response = client.post(f"{urls[n % len(urls)]}/v1/memories", json=body)
            assert response.status_code == 201, response.text
            out[response.json()["ids"][0]] = CITIES[n]


def test_two_servers_and_two_workers_lose_nothing_and_apply_no_job_twice(
    cluster: tuple[Path, list[str], str, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    db, urls, key, procs = cluster
    workers = [_engram(db, "worker", "--batch", "8", "--lease", "3", "--poll", "0.2", home=tmp_path)
               for _ in range(2)]  # fmt: skip
    procs += workers
    acked: dict[str, str] = {}
    writers = [threading.Thread(target=_write, args=(urls, key, i, 4, acked)) for i in range(4)]
    for thread in writers:
        thread.start()
    while len(acked) < len(CITIES) // 3:  # mid-run: a worker dies without warning
        time.sleep(0.05)
    workers[0].send_signal(signal.SIGKILL)
    procs.append(_engram(db, "worker", "--lease", "2", "--poll", "0.2", home=tmp_path))
    for thread in writers:
        thread.join()
    assert len(acked) == len(CITIES)

    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(1200):  # the killed worker's leases run out; the others finish
        jobs = httpx.get(f"{urls[1]}/v1/jobs", headers=headers, timeout=30).json()
        if jobs["pending"] == 0:
            break
        time.sleep(0.25)
    assert jobs["pending"] == 0

    with Memory(db, embedder="test") as mem:
        for ident, city in acked.items():  # every acknowledged write is there
            assert mem.get(ident).text == f"I moved to {city}."
        stated: dict[str, int] = {}
        for user in USERS:
            facts = mem.facts(user_id=user, include_expired=True, limit=1000).items
            for fact in facts:
                for source in fact.sources:
                    stated[source.id] = stated.get(source.id, 0) + 1
                events = [e.event for e in mem.history(fact.id)]
                assert "confirm" not in events, (fact.text, events)  # applied twice
            assert len({f.value for f in facts}) == len(facts)  # no duplicate facts
        assert stated == dict.fromkeys(acked, 1)  # each message gave exactly one fact


def test_a_job_run_twice_is_applied_once(tmp_path: Path) -> None:
    # Two workers that leased the same job (the first one's lease ran out while it was slow)
    # both ask the LLM, which answers differently each time; only the transaction that still
    # finds the job applies its answer.
    answers = iter(["Porto", "Braga"])

    def handler(messages: list[Any]) -> str:
        city = next(answers)
        claim = {
            "subject": "Maya", "statement": f"Maya lives in {city}.", "attribute": "lives_in",
            "value": city, "kind": "fact", "messages": [1], "valid_from": None, "ends": False,
            "entities": [],
        }  # fmt: skip
        return json.dumps({"claims": [claim]})

    llm = TestLLM(handler)
    with Memory(tmp_path / "a.db", embedder="test", llm=llm, consolidate="deferred") as mem:
        ids = mem.add("I have news about where I live.", user_id="maya")
        for _ in range(2):
            mem._consolidator.run(mem.tenant, ids)
        facts = mem.facts(user_id="maya", include_expired=True).items
        assert [f.value for f in facts] == ["Porto"]
        assert [e.event for e in mem.history(facts[0].id)] == ["create"]


def test_leases_hand_each_job_to_one_worker_until_it_runs_out(tmp_path: Path) -> None:
    with Memory(tmp_path / "a.db", embedder="test", consolidate="deferred") as mem:
        mem.add([f"I moved to {c}." for c in CITIES[:5]], user_id="maya")
        store = mem._store
        with store.transaction() as tx:
            first = tx.lease_jobs("extract", 3, "a", time.time() + 0.2)
        with store.transaction() as tx:
            second = tx.lease_jobs("extract", 10, "b", time.time() + 60)
        assert len(first) == 3 and len(second) == 2
        assert not {j.memory_id for j in first} & {j.memory_id for j in second}
        time.sleep(0.3)  # "a" died: its leases run out, and another worker takes its jobs
        with store.transaction() as tx:
            third = tx.lease_jobs("extract", 10, "c", time.time() + 60)
        assert {j.memory_id for j in third} == {j.memory_id for j in first}
        assert mem.work("d").extracted == 0  # every job is held by a live worker
