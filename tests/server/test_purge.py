"""GDPR erasure through the REST API: ``DELETE /v1/users/{id}`` and ``DELETE /v1/tenant``.

A user is given everything that can hold their words: messages in two agent scopes, facts and
entities from the offline rules, a corrected message (history with before and after), pending
work (a deferred extraction from a second Memory on the same file, an embedding that failed with
an error quoting the text) and events. After the purge the store is closed and every file of it
is read as bytes: none of the user's words, names or ids may be left anywhere, while the
neighbours' data (another user, another tenant) stays whole and searchable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from engramdb import Memory, access
from engramdb.embedders import Embedder
from engramdb.embedders.base import Vectors
from engramdb.server.app import create_app

TENANT, OTHER = "acme", "globex"
USER, AGENT, SESSION = "zelda-q7", "agent-zelda-coach", "sess-zelda-1"
#: Everything of the user that must leave the files (each written somewhere below).
SECRETS = (
    "Porto", "Inês", "Carvalho", "Braga", "Xylophonequartz", "Quokkablossom", "Plumbago",
    "Zanzibarite", "Marzipanow", USER, AGENT, SESSION,
)  # fmt: skip
BOB_TEXT = "Bob Apiarist keeps Waxcomber bees in Lisbon."
OLGA_TEXT = "Olga paints Lumenbeacon lighthouses in Gdansk."


class EchoingBrokenEmbedder(Embedder):
    """An embedder that is down, and whose error quotes its input (as some remote APIs do)."""

    name, dim = "test:hash-64", 64  # the store's embedder: the same vector space, just down

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        raise RuntimeError(f"upstream refused the input {texts[0]!r}")


@dataclass
class Store:
    """A store served over REST, with keys of two tenants and the ids the tests look at."""

    folder: Path
    memory: Memory
    client: TestClient
    keys: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, key: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"}
        return self.client.request(method, f"/v1/{path}", headers=headers, **kwargs)

    def ok(self, method: str, path: str, key: str = "admin", **kwargs: Any) -> Any:
        response = self.call(method, path, key, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def add(self, messages: Any, key: str = "writer", **scope: str) -> list[str]:
        ids: list[str] = self.ok("POST", "memories", key, json={"messages": messages, **scope})[
            "ids"
        ]
        return ids

    def scope_items(self, key: str = "admin", **scope: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in scope.items())
        page = self.ok("GET", f"memories?{query}&limit=1000", key)
        assert page["next_cursor"] is None
        items: list[dict[str, Any]] = page["items"]
        return items

    def feed(self, key: str = "admin") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = 0
        while page := self.ok("GET", f"events?after={after}&limit=1000", key)["items"]:
            items += page
            after = page[-1]["id"]
        return items

    def snapshot(self, key: str = "admin") -> Any:
        """What a tenant holds, as its API shows it (to prove a refused call changed nothing)."""
        users = self.ok("GET", "users", key)["items"]
        return (
            users,
            [self.scope_items(key, user_id=u["user_id"]) for u in users],
            self.ok("GET", "jobs", key),
            [(e["id"], e["data"]) for e in self.feed(key)],
        )


def _files(folder: Path) -> dict[str, bytes]:
    found = {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith("engram.db")}
    assert "engram.db" in found
    return found


def _leftovers(folder: Path, needles: Sequence[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in a file of the store, in any ASCII case."""
    return [
        (name, needle)
        for name, data in _files(folder).items()
        for needle in needles
        if needle.encode() in data or needle.lower().encode() in data.lower()
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    memory = Memory(tmp_path / "engram.db", embedder="test")
    keys = {
        role: access.create_key(memory.for_tenant(TENANT), role)[1]
        for role in ("reader", "writer", "admin")
    }
    keys["other"] = access.create_key(memory.for_tenant(OTHER), "admin")[1]
    try:
        with TestClient(create_app(memory, webhooks=False, mcp=False)) as client:
            s = Store(tmp_path, memory, client, keys)
            _seed(s)
            yield s
    finally:
        memory.close()


def _seed(s: Store) -> None:
    lines = (
        "I moved to Porto last month.",
        "My sister Inês Carvalho is a doctor in Braga.",
        "My favourite tea is Xylophonequartz.",
    )
    said = [
        {"role": "user", "name": "Zelda", "content": line, "timestamp": f"2024-05-20T10:0{n}:00Z"}
        for n, line in enumerate(lines)
    ]
    ids = s.add(said, user_id=USER, session_id=SESSION)
    s.ids.update(porto=ids[0], sister=ids[1], tea=ids[2])
    # A correction: the history holds the text before and after.
    changed = {"text": "My favourite tea is Quokkablossom, from Braga."}
    s.ok("PATCH", f"memories/{ids[2]}", "writer", json=changed)
    [s.ids["coach"]] = s.add(
        "I work at Zanzibarite Studios in Porto.", user_id=USER, agent_id=AGENT
    )
    path = s.folder / "engram.db"
    with Memory(path, embedder="test", tenant=TENANT, consolidate="deferred") as later:
        s.ids["deferred"] = later.add("Plumbago: I moved to Braga in May.", user_id=USER)[0]
    with Memory(path, embedder=EchoingBrokenEmbedder(), tenant=TENANT) as down:
        s.ids["unembedded"] = down.add("Marzipanow is my nickname.", user_id=USER)[0]
    [s.ids["bob"]] = s.add(BOB_TEXT, user_id="bob")
    [s.ids["olga"]] = s.add(OLGA_TEXT, "other", user_id=USER)
    s.ok("POST", "webhooks", json={"url": "http://127.0.0.1:9/hook"})


def _what_the_user_has(s: Store) -> dict[str, int]:
    scopes = [{"user_id": USER}, {"user_id": USER, "agent_id": AGENT}]
    items = [i for scope in scopes for i in s.scope_items(**scope)]
    entities = [e for scope in scopes for e in s.ok("GET", "entities", params=scope)["items"]]
    jobs = s.ok("GET", "jobs")
    return {
        "memories": len(items),
        "messages": sum(i["kind"] == "message" for i in items),
        "facts": sum(i["kind"] == "fact" for i in items),
        "entities": len(entities),
        "jobs": jobs["pending"],  # every pending job of the tenant is the user's (Bob's are done)
        "scopes": len(scopes),
    }


def test_the_seeded_user_has_everything_a_purge_must_reach(store: Store) -> None:
    had = _what_the_user_has(store)
    assert had["messages"] == 6 and had["facts"] >= 3 and had["entities"] >= 2
    assert had["jobs"] >= 2 and store.ok("GET", "jobs")["failed"] >= 1
    history = store.ok("GET", f"memories/{store.ids['tea']}/history")["items"]
    assert [h["event"] for h in history] == ["create", "update"]
    # The words are really in the files before the purge (so the scan below can see them).
    store.memory.close()
    assert {needle for _, needle in _leftovers(store.folder, SECRETS)} == set(SECRETS)


def test_purge_user_returns_a_receipt_and_leaves_no_trace_in_any_file(store: Store) -> None:
    had = _what_the_user_has(store)
    receipt = store.ok("DELETE", f"users/{USER}")
    assert receipt == {"user_id": USER, **had}

    assert store.scope_items(user_id=USER) == []
    assert store.scope_items(user_id=USER, agent_id=AGENT) == []
    for ident in (store.ids[k] for k in ("porto", "sister", "tea", "coach", "deferred")):
        assert store.call("GET", f"memories/{ident}").json()["error"]["code"] == "memory_not_found"
    assert [u["user_id"] for u in store.ok("GET", "users")["items"]] == ["bob"]
    assert store.ok("GET", "jobs") == {"pending": 0, "failed": 0}
    assert store.ok("GET", "facts", params={"user_id": USER})["items"] == []
    assert store.ok("GET", "entities", params={"user_id": USER})["items"] == []
    assert store.ok("GET", "profile", params={"user_id": USER})["entries"] == []
    assert store.ok("POST", "search", json={"query": "Porto Braga", "user_id": USER}) == {
        "results": []
    }
    # The events keep that changes happened, never what they were.
    feed = store.feed()
    gone = {e["memory_id"] for e in feed} - {store.ids["bob"]}
    assert gone and all(e["data"] is None for e in feed if e["memory_id"] in gone)
    history = store.ok("GET", f"memories/{store.ids['tea']}/history")["items"]
    assert all(h["before"] is None and h["after"] is None for h in history)
    export = store.call("GET", "export").text
    for text in (json.dumps(feed, ensure_ascii=False), json.dumps(history), export):
        assert not [s for s in SECRETS if s in text]

    # The neighbours: Bob in the same tenant, the same user id in another tenant.
    assert store.ok("GET", f"memories/{store.ids['bob']}")["text"] == BOB_TEXT
    hits = store.ok("POST", "search", json={"query": "Waxcomber bees", "user_id": "bob"})
    assert hits["results"][0]["id"] == store.ids["bob"]
    olga = store.ok("POST", "search", "other", json={"query": "lighthouses", "user_id": USER})
    assert [h["id"] for h in olga["results"]][:1] == [store.ids["olga"]]

    # Gone from the files at once, while the server still runs, and after it stopped.
    assert not _leftovers(store.folder, [s for s in SECRETS if s != USER])
    store.client.__exit__(None, None, None)
    store.memory.close()
    assert _leftovers(store.folder, SECRETS) == [("engram.db", USER)]  # Olga's tenant has one
    assert not _leftovers(store.folder, [s for s in SECRETS if s != USER])
    assert {n for _, n in _leftovers(store.folder, ["Waxcomber", "Lumenbeacon"])} == {
        "Waxcomber", "Lumenbeacon"
    }  # fmt: skip


def test_purge_tenant_revokes_its_keys_and_leaves_no_trace(store: Store) -> None:
    assert store.call("DELETE", f"tenant?confirm={OTHER}").status_code == 400
    assert store.call("DELETE", "tenant").status_code == 400
    receipt = store.ok("DELETE", f"tenant?confirm={TENANT}")
    assert receipt["tenant"] == TENANT
    assert receipt["memories"] >= 8 and receipt["scopes"] == 3
    assert receipt["api_keys"] == 3 and receipt["webhooks"] == 1 and receipt["history"] > 0

    for role in ("admin", "writer", "reader"):
        refused = store.call("GET", "whoami", role)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
    # The other tenant is whole: its key works, its memory is found.
    assert store.ok("GET", "whoami", "other")["tenant"] == OTHER
    assert store.ok("GET", f"memories/{store.ids['olga']}", "other")["text"] == OLGA_TEXT
    olga = store.ok("POST", "search", "other", json={"query": "Lumenbeacon", "user_id": USER})
    assert olga["results"][0]["id"] == store.ids["olga"]

    gone = [s for s in SECRETS if s != USER] + ["Waxcomber", "Apiarist", "127.0.0.1:9/hook"]
    assert not _leftovers(store.folder, gone)
    store.client.__exit__(None, None, None)
    store.memory.close()
    assert not _leftovers(store.folder, gone)
    assert {n for _, n in _leftovers(store.folder, ["Lumenbeacon"])} == {"Lumenbeacon"}


def test_purge_of_an_unknown_user_is_a_zero_receipt(store: Store) -> None:
    before = store.snapshot()
    receipt = store.ok("DELETE", "users/nobody-here")
    assert receipt == {
        "user_id": "nobody-here", "memories": 0, "messages": 0, "facts": 0, "entities": 0,
        "jobs": 0, "scopes": 0,
    }  # fmt: skip
    # The same user id purged in another tenant takes nothing of this one.
    assert store.ok("DELETE", f"users/{USER}", "other")["memories"] == 1
    assert store.snapshot() == before


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_only_an_admin_may_purge(store: Store, role: str) -> None:
    before, others = store.snapshot(), store.snapshot("other")
    for path in (f"users/{USER}", "users/bob", f"tenant?confirm={TENANT}"):
        refused = store.call("DELETE", path, role)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
    assert store.snapshot() == before and store.snapshot("other") == others
    assert store.ok("GET", "whoami", role)["role"] == role  # the key still works


def test_a_user_who_comes_back_after_the_purge_starts_empty(store: Store) -> None:
    # Warm every index of the user's scopes first: nothing cached may outlive the purge.
    for scope in ({"user_id": USER}, {"user_id": USER, "agent_id": AGENT}):
        assert store.ok("POST", "search", json={"query": "Porto Braga Carvalho", **scope})[
            "results"
        ]
    store.ok("DELETE", f"users/{USER}")
    # New scopes (which may reuse the purged scopes' row ids) start from nothing.
    [back] = store.add("Hello again, I am new here.", user_id=USER)
    [fresh] = store.add("A newcomer who likes Porto wine.", user_id="newcomer", agent_id=AGENT)
    assert [i["id"] for i in store.scope_items(user_id=USER)] == [back]
    for scope, ident in (
        ({"user_id": USER}, back),
        ({"user_id": "newcomer", "agent_id": AGENT}, fresh),
    ):
        hits = store.ok("POST", "search", json={"query": "Porto Braga Carvalho again", **scope})
        # The new message, or a fact drawn from it: nothing from before the purge.
        assert ident in {h["id"] for h in hits["results"]}
        assert all(h["id"] == ident or [s["id"] for s in h["sources"]] == [ident]
                   for h in hits["results"])  # fmt: skip
    assert store.ok("GET", "facts", params={"user_id": USER})["items"] == []
    assert store.ok("GET", "entities", params={"user_id": USER})["items"] == []
