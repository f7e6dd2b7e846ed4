"""The MCP server through the official MCP client, over both transports.

stdio: `engram mcp` spawned as an MCP desktop client would spawn it. Streamable HTTP: `engram mcp
--http` as a real server process with real API keys, and the ASGI app `mcp_http_app` mounted in
a Starlette application under uvicorn, as the REST server mounts it. No mocks: a real store with
the deterministic test embedder, facts from the offline rules.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from starlette.applications import Starlette
from starlette.routing import Mount

from engramdb import Memory, access
from engramdb.cli import main
from engramdb.server.mcp import mcp_http_app

pytestmark = [
    pytest.mark.anyio,
    # The brief's client, deprecated in mcp 1.2x for streamable_http_client(http_client=...);
    # it is in every mcp 1.x the pin allows.
    pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning"),
]

TOOLS = {
    "add_memory", "search_memory", "get_context", "get_profile", "list_memories",
    "update_memory", "delete_memory", "list_facts", "list_entities", "get_timeline",
    "memory_history",
}  # fmt: skip

MAYA = [
    {"role": "user", "name": "Maya", "content": "I live in Lisbon, near the river.",
     "timestamp": "2024-01-10T10:00:00Z"},
    {"role": "assistant", "content": "Lovely! Lisbon is beautiful."},
    {"role": "user", "name": "Maya", "content": "My sister Inês is visiting next week.",
     "timestamp": "2024-01-10T10:02:00Z"},
]  # fmt: skip
MOVE = {"role": "user", "name": "Maya", "content": "I moved to Porto yesterday!",
        "timestamp": "2024-05-29T09:00:00Z"}  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _server_env(home: Path) -> dict[str, str]:
    """The environment of a spawned server: its own store, no model to load."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    return {**env, "ENGRAM_HOME": str(home), "ENGRAM_EMBEDDER": "test"}


@asynccontextmanager
async def stdio_session(home: Path) -> AsyncIterator[ClientSession]:
    """An MCP session with `engram mcp` over stdio, as a desktop client starts it."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "engramdb.cli", "mcp"], env=_server_env(home)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, key: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with (
        streamablehttp_client(url, headers=headers) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """A tool's structured result; fails the test on a tool error."""
    result = await session.call_tool(tool, arguments)
    assert not result.isError, result.content
    assert result.structuredContent is not None
    # The text content says the same, for clients that read text only.
    text = result.content[0].text  # type: ignore[union-attr]
    if tool != "get_context":
        assert json.loads(text) == result.structuredContent
    return result.structuredContent


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The text of a tool error; fails the test when the call succeeds."""
    result = await session.call_tool(tool, arguments)
    assert result.isError, result.content
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text
    return text


# -- stdio -----------------------------------------------------------------------------------------


async def test_every_tool_is_listed_with_a_description_and_schema(tmp_path: Path) -> None:
    async with stdio_session(tmp_path) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 80, tool.name
        schema = tool.inputSchema
        assert schema["type"] == "object"
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert "user_id" in tools["search_memory"].inputSchema["required"]
    assert tools["search_memory"].annotations.readOnlyHint  # type: ignore[union-attr]
    assert tools["delete_memory"].annotations.destructiveHint  # type: ignore[union-attr]
    assert tools["memory_history"].inputSchema["required"] == ["memory_id"]


async def test_add_then_search_finds_it_with_sources_and_dates(tmp_path: Path) -> None:
    async with stdio_session(tmp_path) as session:
        ids = (await call(session, "add_memory", user_id="maya", messages=MAYA))["ids"]
        assert len(ids) == 3
        again = await call(session, "add_memory", user_id="maya", messages=MAYA)
        assert again["ids"] == ids  # the same turns at the same times: stored once
        hits = (await call(session, "search_memory", query="Lisbon river", user_id="maya"))["hits"]
        text = await call(session, "add_memory", user_id="maya", text="I love sailing.")
        sailing = await call(session, "search_memory", query="sailing", user_id="maya")
    turn = next(h for h in hits if h["id"] == ids[0])
    assert turn["kind"] == "message"
    assert turn["occurred_at"] == "2024-01-10T10:00:00+00:00"
    fact = next(h for h in hits if h["kind"] == "fact" and "Lisbon" in h["text"])
    assert fact["valid_from"].startswith("2024-01-10") and fact["valid_to"] is None
    assert [(s["id"], s["occurred_at"]) for s in fact["sources"]] == [
        (ids[0], "2024-01-10T10:00:00+00:00")
    ]
    [said] = text["ids"]
    assert said in [h["id"] for h in sailing["hits"]]
    for hit in sailing["hits"]:  # the fact distilled from it cites it
        if hit["kind"] == "fact" and "sailing" in hit["text"]:
            assert [s["id"] for s in hit["sources"]] == [said]


async def test_facts_profile_context_and_entities_after_a_move(tmp_path: Path) -> None:
    async with stdio_session(tmp_path) as session:
        await call(session, "add_memory", user_id="maya", messages=MAYA, session_id="s1")
        move = (await call(session, "add_memory", user_id="maya", messages=[MOVE]))["ids"][0]
        now = (await call(session, "list_facts", user_id="maya"))["items"]
        every = (await call(session, "list_facts", user_id="maya", include_expired=True))["items"]
        then = await call(session, "list_facts", user_id="maya", as_of="2024-03-01")
        profile = await call(session, "get_profile", user_id="maya")
        context = await call(session, "get_context", query="Where does Maya live?", user_id="maya")
        past = await call(
            session, "search_memory", query="Where does Maya live?", user_id="maya",
            as_of="2024-04-01",
        )  # fmt: skip
        current = await call(
            session, "search_memory", query="Where does Maya live?", user_id="maya",
            include_expired=False,
        )  # fmt: skip
        entities = (await call(session, "list_entities", user_id="maya", name="Inês"))["entities"]

    porto = next(f for f in now if "Porto" in f["text"])
    assert porto["valid_from"].startswith("2024-05-28")  # "yesterday", said on 29 May
    assert porto["valid_to"] is None and [s["id"] for s in porto["sources"]] == [move]
    assert not any("Lisbon" in f["text"] for f in now)
    lisbon = next(f for f in every if "Lisbon" in f["text"])
    assert lisbon["valid_to"].startswith("2024-05-28")
    assert lisbon["superseded_by"] == porto["id"]
    assert any("Lisbon" in f["text"] for f in then["items"])
    assert not any("Porto" in f["text"] for f in then["items"])
    assert "Porto" in profile["text"] and "Lisbon" not in profile["text"]
    assert any(e["value"] == "Porto" for e in profile["entries"])
    assert "Porto" in context["result"] and "28 May 2024" in context["result"]
    assert "Lisbon" in past["hits"][0]["text"]
    assert all(h["valid_to"] is None for h in current["hits"])
    assert entities[0]["name"] == "Inês" and entities[0]["relation"] == "sister"


async def test_update_delete_and_history(tmp_path: Path) -> None:
    async with stdio_session(tmp_path) as session:
        [ident] = (await call(session, "add_memory", user_id="ana", text="I work at Globex"))["ids"]
        record = await call(
            session, "update_memory", memory_id=ident, text="I work at Initech",
            metadata={"corrected": True},
        )  # fmt: skip
        history = (await call(session, "memory_history", memory_id=ident))["history"]
        facts = (await call(session, "list_facts", user_id="ana"))["items"]
        deleted = await call(session, "delete_memory", memory_id=ident)
        after = (await call(session, "memory_history", memory_id=ident))["history"]
        listed = await call(session, "list_memories", user_id="ana")
        gone = await refused(session, "update_memory", memory_id=ident, text="again")
    assert record["text"] == "I work at Initech" and record["metadata"] == {"corrected": True}
    assert [h["event"] for h in history] == ["create", "update"]
    assert history[1]["before"]["text"] == "I work at Globex"
    assert [f["value"] for f in facts] == ["Initech"]
    assert deleted == {"deleted": ident}
    assert [h["event"] for h in after] == ["create", "update", "delete"]
    assert listed == {"items": [], "next_cursor": None}
    assert gone.startswith("memory_not_found: ")


async def test_errors_are_tool_errors_starting_with_their_code(tmp_path: Path) -> None:
    async with stdio_session(tmp_path) as session:
        missing = await refused(session, "delete_memory", memory_id="no-such-id")
        history = await refused(session, "memory_history", memory_id="no-such-id")
        both = await refused(session, "add_memory", user_id="u", text="a", messages=[MOVE])
        role = await refused(
            session, "add_memory", user_id="u", messages=[{"role": "robot", "content": "x"}]
        )
        limit = await refused(session, "search_memory", query="x", user_id="u", limit=0)
        date = await refused(session, "list_facts", user_id="u", as_of="not a date")
        cursor = await refused(session, "list_memories", user_id="u", cursor="garbage")
    assert missing.startswith("memory_not_found: no memory with id 'no-such-id'")
    assert history.startswith("memory_not_found: ")
    assert both.startswith("invalid_input: add_memory needs messages")
    assert role.startswith("unknown_role: ")
    assert limit.startswith("invalid_input: limit: ")
    assert date.startswith("invalid_timestamp: ")
    assert cursor.startswith("invalid_cursor: ")


async def test_pages_and_timeline(tmp_path: Path) -> None:
    late = {"role": "user", "content": "We adopted a cat named Miso.",
            "timestamp": "2024-03-02T08:00:00Z"}  # fmt: skip
    async with stdio_session(tmp_path) as session:
        # Recorded out of order: the timeline follows when things were said.
        await call(session, "add_memory", user_id="maya", messages=[late])
        await call(session, "add_memory", user_id="maya", messages=MAYA)
        first = await call(session, "list_memories", user_id="maya", kind="message", limit=2)
        rest = await call(
            session, "list_memories", user_id="maya", kind="message", cursor=first["next_cursor"]
        )
        timeline = await call(session, "get_timeline", user_id="maya")
        period = {"since": "2024-01-10T10:00:00Z", "until": "2024-03-02T08:00:00Z"}
        window = await call(session, "get_timeline", user_id="maya", limit=2, **period)
        after = await call(
            session, "get_timeline", user_id="maya", limit=2, cursor=window["next_cursor"],
            **period,
        )  # fmt: skip
        wrong = await refused(
            session, "get_timeline", user_id="maya", cursor=window["next_cursor"]
        )  # the cursor of another period
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    said = [t["occurred_at"] for t in timeline["items"]]
    assert said == sorted(said) and len(said) == 4 and timeline["next_cursor"] is None
    assert timeline["items"][-1]["text"] == late["content"]
    assert set(timeline) == {"items", "next_cursor"}
    # since and until include their instant; the assistant's turn is 1 ms after Maya's.
    assert [t["role"] for t in window["items"]] == ["user", "assistant"]
    # The next page: Inês at 10:02, then the cat at until itself, and nothing more.
    assert [t["text"] for t in after["items"]] == [MAYA[2]["content"], late["content"]]
    assert after["next_cursor"] is None
    assert wrong.startswith("invalid_cursor: ")


# -- streamable HTTP -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, alive: Any) -> None:
    """Wait until something listens on ``port``; ``alive()`` says whether to keep waiting."""
    deadline = time.monotonic() + 120  # a generous bound on start-up, not a speed check
    while time.monotonic() < deadline:
        assert alive(), "the server stopped before listening"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`engram mcp --http` in its own process, and API keys of two tenants."""
    home = tmp_path_factory.mktemp("mcp-http")
    with Memory(home / "engram.db", embedder="test") as mem:
        acme, globex = mem.for_tenant("acme"), mem.for_tenant("globex")
        keys = {
            "acme": access.create_key(acme, "writer")[1],
            "acme-reader": access.create_key(acme, "reader")[1],
            "globex": access.create_key(globex, "admin")[1],
        }
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engramdb.cli", "mcp", "--http", "--port", str(port)],
        env=_server_env(home),
    )
    try:
        _wait_for_port(port, lambda: proc.poll() is None)
        yield f"http://127.0.0.1:{port}/mcp", keys
    finally:
        proc.terminate()
        proc.wait()


def test_http_without_a_valid_key_is_401(http_server: tuple[str, dict[str, str]]) -> None:
    url, _ = http_server
    hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for headers in ({}, {"Authorization": "Bearer ek_not-a-key"}, {"Authorization": "Basic x"}):
        response = httpx.post(url, json=hello, headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "unauthorized" and error["status"] == 401
        assert error["message"]
        assert response.headers["www-authenticate"] == "Bearer"


async def test_http_reader_key_reads_but_cannot_write(
    http_server: tuple[str, dict[str, str]],
) -> None:
    url, keys = http_server
    async with http_session(url, keys["acme-reader"]) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        hits = await call(session, "search_memory", query="anything", user_id="nobody")
        add = await refused(session, "add_memory", user_id="nobody", text="I live in Oslo")
        update = await refused(session, "update_memory", memory_id="x", text="y")
        delete = await refused(session, "delete_memory", memory_id="x")
    assert tools == TOOLS
    assert hits == {"hits": []}
    for text in (add, update, delete):
        assert text.startswith("forbidden: ") and "writer" in text


async def test_http_tenants_never_see_each_other(http_server: tuple[str, dict[str, str]]) -> None:
    url, keys = http_server
    async with http_session(url, keys["acme"]) as acme:
        ids = (await call(acme, "add_memory", user_id="maya", messages=[*MAYA, MOVE]))["ids"]
        found = await call(acme, "search_memory", query="Porto", user_id="maya")
    async with http_session(url, keys["globex"]) as globex:
        search = await call(globex, "search_memory", query="Porto Lisbon", user_id="maya")
        listed = await call(globex, "list_memories", user_id="maya")
        facts = await call(globex, "list_facts", user_id="maya", include_expired=True)
        history = await refused(globex, "memory_history", memory_id=ids[0])
        delete = await refused(globex, "delete_memory", memory_id=ids[0])
        mine = (await call(globex, "add_memory", user_id="maya", text="I live in Berlin"))["ids"]
    async with http_session(url, keys["acme-reader"]) as reader:
        still = await call(reader, "list_memories", user_id="maya", kind="message")
        profile = await call(reader, "get_profile", user_id="maya")
    assert any("Porto" in h["text"] for h in found["hits"])
    assert search == {"hits": []}
    assert listed == {"items": [], "next_cursor": None} and facts["items"] == []
    assert history.startswith("memory_not_found: ") and delete.startswith("memory_not_found: ")
    assert [r["id"] for r in still["items"]] == ids  # acme's, untouched; globex's not among them
    assert mine[0] not in ids
    assert "Porto" in profile["text"] and "Berlin" not in profile["text"]


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["mcp", "--http", "--host", "0.0.0.0", "--no-auth"])
    assert result.exit_code == 1
    assert "--no-auth" in result.output and "loopback" in result.output
    assert not (tmp_path / "home" / "engram.db").exists()  # refused before opening the store
    usage = CliRunner().invoke(main, ["mcp", "--no-auth"])
    assert usage.exit_code == 2


@pytest.fixture
def mounted_without_auth(tmp_path: Path) -> Iterator[str]:
    """mcp_http_app without auth, mounted at /mcp in a host application, as the REST server
    mounts it, under uvicorn in a thread."""
    with Memory(tmp_path / "store.db", embedder="test") as mem:
        mcp_app = mcp_http_app(mem, require_auth=False)
        host = Starlette(routes=[Mount("/mcp", app=mcp_app)], lifespan=mcp_app.lifespan)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(host, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            _wait_for_port(port, thread.is_alive)
            yield f"http://127.0.0.1:{port}/mcp/"
        finally:
            server.should_exit = True
            thread.join()


async def test_mounted_app_without_auth_serves_loopback_clients_only(
    mounted_without_auth: str,
) -> None:
    url = mounted_without_auth
    async with http_session(url) as session:
        [ident] = (await call(session, "add_memory", user_id="u", text="I play the cello"))["ids"]
        hits = (await call(session, "search_memory", query="cello", user_id="u"))["hits"]
        deleted = await call(session, "delete_memory", memory_id=ident)
    assert ident in [h["id"] for h in hits] and deleted == {"deleted": ident}
    # A page that rebinds its DNS name to 127.0.0.1 sends its own Host: refused.
    hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    rebound = httpx.post(url, json=hello, headers={**accept, "Host": "evil.example"})
    assert rebound.status_code == 421
