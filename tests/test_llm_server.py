"""LLM extraction against a real local model served by llama-cpp-python (opt-in).

Skipped unless ``ENGRAM_LLM_SERVER_MODEL`` names a GGUF file. The fixture starts
``python -m llama_cpp.server`` (with ``ENGRAM_LLM_SERVER_PYTHON``, default this interpreter) on a
free port, waits for ``/v1/models`` and stops it afterwards. docs/llms.md has the commands.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engramdb.llms.openai import OpenAILLM
from engramdb.pipeline.extract_llm import extract_with_llm
from engramdb.pipeline.messages import prepare
from engramdb.records import Row
from engramdb.types import Scope

pytestmark = pytest.mark.llm_server

MODEL = os.environ.get("ENGRAM_LLM_SERVER_MODEL", "")
PYTHON = os.environ.get("ENGRAM_LLM_SERVER_PYTHON", sys.executable)
#: Loading 1.1 GB and warming up takes seconds; a busy machine makes it more.
START_TIMEOUT = 180.0

CONVERSATION = [
    {
        "role": "user",
        "content": "Big news: I moved from Berlin to Lisbon yesterday! The new flat is tiny.",
        "timestamp": "2024-05-28T09:15:00+01:00",
    },
    {"role": "assistant", "content": "Congratulations! How are you settling in?"},
    {
        "role": "user",
        "content": "Pretty well. I also start my new job as a data analyst at Feedzai on Monday.",
    },
    {"role": "assistant", "content": "Exciting! Will anyone help you unpack?"},
    {"role": "user", "content": "Yes, my sister Ana is flying in from Porto this weekend."},
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {START_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not MODEL or not Path(MODEL).is_file():
        pytest.skip("set ENGRAM_LLM_SERVER_MODEL to a GGUF file to run the real-server tests")
    port = _free_port()
    log = tmp_path_factory.mktemp("llm_server") / "server.log"
    command = [
        PYTHON, "-m", "llama_cpp.server", "--model", MODEL, "--model_alias", "qwen",
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--n_ctx", "4096",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _rows() -> list[Row]:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    return prepare(
        CONVERSATION,
        scope=Scope(user_id="maya"),
        session_id="s1",
        metadata=None,
        max_chars=10_000,
        now=now,
    )


def test_a_real_model_extracts_sourced_dated_claims(server_url: str) -> None:
    # Idle, a call takes ~30 s; on a machine busy with other work it took over 10 minutes.
    llm = OpenAILLM("qwen", base_url=server_url, api_key="", timeout=1800.0, max_retries=2)
    rows = _rows()
    users = {row.id for row in rows if row.role == "user"}
    started = time.perf_counter()
    claims = extract_with_llm(llm, rows, subject_for=lambda r: "Maya" if r.role == "user" else None)
    seconds = time.perf_counter() - started
    report = llm.usage.as_dict()
    print(f"\n{len(claims)} claims in {seconds:.1f} s; usage {report}")
    for claim in claims:
        since = datetime.fromtimestamp(claim.valid_from, UTC).isoformat(timespec="minutes")
        print(f"  {claim.attribute}={claim.value!r} ends={claim.ends} from {since}: {claim.text}")

    assert claims, "the model found nothing in a conversation full of facts"
    earliest = datetime(2023, 1, 1, tzinfo=UTC).timestamp()
    latest = datetime(2024, 7, 1, tzinfo=UTC).timestamp()
    for claim in claims:
        assert claim.source_ids and set(claim.source_ids) <= users
        assert earliest <= claim.valid_from <= latest  # an absolute date, near the conversation
        assert "yesterday" not in claim.text.lower()
    moves = [c for c in claims if c.attribute == "lives_in" and not c.ends]
    assert moves, "no claim says where Maya lives now"
    assert all("Lisbon" in c.value for c in moves), [c.value for c in moves]
    assert moves[0].source_ids[0] == rows[0].id
    # "yesterday" on 28 May (+01:00) is the 27th, midnight on the speaker's clock.
    assert moves[0].valid_from == datetime(2024, 5, 26, 23, tzinfo=UTC).timestamp()
