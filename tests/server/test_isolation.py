"""Tenant isolation through the REST API, driven by random operation sequences.

Three tenants share one store. Each writes texts only it uses (its own marker word, cities and a
sister's name), under its own users and a user id all three share, and sometimes under message
ids all three use. A model tracks what each tenant wrote. Every tenant's key also aims at the
others' ids, users and webhooks. After every response and every step:

- no response to tenant A contains a string only another tenant wrote (marker, city, name, user
  id, memory id, webhook), unless A's own request carried it;
- a get, update, delete or history of another tenant's id answers 404 ``memory_not_found``,
  worded exactly as for an id that never existed, and the owner's record and history are as
  they were;
- A's listings, counts, users, events and export equal A's model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engramdb import Memory, access
from engramdb.server.app import create_app


@dataclass(frozen=True)
class Words:
    marker: str
    cities: tuple[str, str]
    sister: str

    def all(self) -> set[str]:
        return {self.marker, *self.cities, *self.sister.split()}


TENANTS = ("alpha", "beta", "gamma")
WORDS = {
    "alpha": Words("Aardvarkian", ("Porto", "Braga"), "Inês Almeida"),
    "beta": Words("Bumblebrook", ("Oslo", "Bergen"), "Ingrid Bergstrom"),
    "gamma": Words("Cormorantix", ("Kyoto", "Osaka"), "Hana Satomi"),
}
COMMON = ("garden", "coffee", "river", "violin", "sister", "moved")
SHARED_USER = "shared-user"
SHARED_IDS = ("msg-shared-1", "msg-shared-2")
NEVER = "never-written-id"
AGENTS = (None, "helper")


def own_users(tenant: str) -> tuple[str, ...]:
    return (f"{tenant}-user-1", f"{tenant}-user-2", SHARED_USER)


ALL_USERS = tuple(sorted({u for t in TENANTS for u in own_users(t)}))


@dataclass
class Rec:
    text: str
    user: str
    agent: str | None


def _text(tenant: str, kind: int, word: str, n: int) -> str:
    w = WORDS[tenant]
    if kind == 0:
        return f"{w.marker} note {n}: the {word} by the {w.cities[n % 2]} road."
    if kind == 1:
        return f"I moved to {w.cities[n % 2]} last month."
    return f"My sister {w.sister} is a doctor in {w.cities[(n + 1) % 2]}."


def _scope(user: str, agent: str | None) -> dict[str, str]:
    return {"user_id": user} if agent is None else {"user_id": user, "agent_id": agent}


class Isolation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="engram-isolation-"))
        self.memory = Memory(self.folder / "engram.db", embedder="test", rate_limit=0)
        self.keys = {t: access.create_key(self.memory.for_tenant(t), "admin")[1] for t in TENANTS}
        self.client = TestClient(create_app(self.memory, webhooks=False, mcp=False))
        self.client.__enter__()
        self.live: dict[str, dict[str, Rec]] = {t: {} for t in TENANTS}
        self.ever: dict[str, set[str]] = {t: set() for t in TENANTS}
        self.hooks: dict[str, set[str]] = {t: set() for t in TENANTS}
        self.hooks_ever: dict[str, set[str]] = {t: set() for t in TENANTS}
        self.n = 0

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)
        self.memory.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the client, with the leak check on every response ---------------------------------------

    def forbidden(self, tenant: str) -> set[str]:
        out: set[str] = set()
        for other in TENANTS:
            if other != tenant:
                out |= WORDS[other].all() | set(own_users(other)) - {SHARED_USER}
                out |= (self.ever[other] - self.ever[tenant]) | self.hooks_ever[other]
                out.add(f"{other}-hook")
        return out

    def call(self, tenant: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        response = self.client.request(method, f"/v1/{path}", headers=headers, **kwargs)
        asked = (path + json.dumps(kwargs, ensure_ascii=False, default=str)).lower()
        seen = response.text.lower()
        leaked = [s for s in self.forbidden(tenant) if s.lower() in seen and s.lower() not in asked]
        assert not leaked, f"{tenant} {method} {path} got another tenant's {leaked}: {seen[:500]}"
        return response

    def ok(self, tenant: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(tenant, method, path, **kwargs)
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()

    def refused(self, tenant: str, method: str, path: str, ident: str, **kwargs: Any) -> None:
        """A 404 memory_not_found, worded exactly as for an id that never existed anywhere."""
        response = self.call(tenant, method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "memory_not_found"
        unknown = self.call(tenant, method, path.replace(ident, NEVER), **kwargs).json()["error"]
        assert error["message"].replace(ident, NEVER) == unknown["message"]

    def owners(self, ident: str, excluding: str) -> dict[str, Any]:
        """What every other tenant holding ``ident`` shows of it: the record and its history."""
        return {
            t: (
                self.ok(t, "GET", f"memories/{ident}"),
                self.ok(t, "GET", f"memories/{ident}/history"),
            )
            for t in TENANTS
            if t != excluding and ident in self.live[t]
        }

    def pick_id(self, data: st.DataObject) -> str:
        pool = sorted({i for t in TENANTS for i in self.ever[t]} | {*SHARED_IDS, NEVER})
        return data.draw(st.sampled_from(pool), label="id")

    def pick_ids(self, data: st.DataObject) -> list[str]:
        return [self.pick_id(data) for _ in range(data.draw(st.integers(0, 3), label="n"))]

    # -- writes ------------------------------------------------------------------------------------

    @rule(
        tenant=st.sampled_from(TENANTS), data=st.data(), agent=st.sampled_from(AGENTS),
        kinds=st.lists(st.integers(0, 2), min_size=1, max_size=2),
        word=st.sampled_from(COMMON), explicit=st.sampled_from((None, *SHARED_IDS)),
    )  # fmt: skip
    def add(
        self,
        tenant: str,
        data: st.DataObject,
        agent: str | None,
        kinds: list[int],
        word: str,
        explicit: str | None,
    ) -> None:
        user = data.draw(st.sampled_from(own_users(tenant)), label="user")
        messages: list[dict[str, Any]] = []
        for kind in kinds:
            self.n += 1
            messages.append({"role": "user", "content": _text(tenant, kind, word, self.n)})
        if explicit is not None:
            messages[0]["id"] = explicit
        body = {"messages": messages, **_scope(user, agent)}
        held = self.live[tenant].get(explicit or "")
        # The same event sent again under its id is stored once; other content is a conflict.
        again = held == Rec(messages[0]["content"], user, agent)
        if held is not None and not again:
            response = self.call(tenant, "POST", "memories", json=body)
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "id_conflict"
            return
        ids = self.ok(tenant, "POST", "memories", json=body)["ids"]
        assert len(ids) == len(set(ids)) == len(messages)
        if explicit is not None:
            assert ids[0] == explicit
        stored = list(zip(ids, messages, strict=True))
        for ident, message in stored[1:] if again else stored:
            assert ident not in self.live[tenant]
            self.live[tenant][ident] = Rec(message["content"], user, agent)
            self.ever[tenant].add(ident)

    @rule(tenant=st.sampled_from(TENANTS), data=st.data(), word=st.sampled_from(COMMON))
    def update(self, tenant: str, data: st.DataObject, word: str) -> None:
        ident = self.pick_id(data)
        self.n += 1
        text = _text(tenant, 0, word, self.n)
        if ident in self.live[tenant]:
            record = self.ok(tenant, "PATCH", f"memories/{ident}", json={"text": text})
            assert record["id"] == ident and record["text"] == text
            self.live[tenant][ident].text = text
            return
        before = self.owners(ident, tenant)
        self.refused(tenant, "PATCH", f"memories/{ident}", ident, json={"text": text})
        assert self.owners(ident, tenant) == before

    @rule(tenant=st.sampled_from(TENANTS), data=st.data())
    def delete(self, tenant: str, data: st.DataObject) -> None:
        ident = self.pick_id(data)
        if ident in self.live[tenant]:
            assert self.ok(tenant, "DELETE", f"memories/{ident}") == {"deleted": ident}
            del self.live[tenant][ident]
            return
        before = self.owners(ident, tenant)
        self.refused(tenant, "DELETE", f"memories/{ident}", ident)
        assert self.owners(ident, tenant) == before

    @rule(tenant=st.sampled_from(TENANTS), data=st.data(), word=st.sampled_from(COMMON))
    def batch_update(self, tenant: str, data: st.DataObject, word: str) -> None:
        ids = list(dict.fromkeys(self.pick_ids(data) + sorted(self.live[tenant])[:1]))
        if not ids:
            return
        self.n += 1
        text = _text(tenant, 0, word, self.n)
        body = {"updates": [{"id": i, "text": text} for i in ids]}
        foreign = [i for i in ids if i not in self.live[tenant]]
        if not foreign:
            items = self.ok(tenant, "POST", "memories/batch-update", json=body)["items"]
            assert [r["id"] for r in items] == ids and {r["text"] for r in items} == {text}
            for i in ids:
                self.live[tenant][i].text = text
            return
        before = {i: self.owners(i, tenant) for i in ids}
        response = self.call(tenant, "POST", "memories/batch-update", json=body)
        assert response.status_code == 404 and response.json()["error"]["code"] == (
            "memory_not_found"
        )  # nothing changed: the invariants compare every listing with the model
        assert {i: self.owners(i, tenant) for i in ids} == before

    @rule(tenant=st.sampled_from(TENANTS), data=st.data())
    def batch_delete(self, tenant: str, data: st.DataObject) -> None:
        ids = list(dict.fromkeys(self.pick_ids(data) + sorted(self.live[tenant])[-1:]))
        if not ids:
            return
        foreign = [i for i in ids if i not in self.live[tenant]]
        if not foreign:
            assert self.ok(tenant, "POST", "memories/batch-delete", json={"ids": ids}) == {
                "deleted": ids
            }
            for i in ids:
                del self.live[tenant][i]
            return
        before = {i: self.owners(i, tenant) for i in ids}
        response = self.call(tenant, "POST", "memories/batch-delete", json={"ids": ids})
        assert response.status_code == 404 and response.json()["error"]["code"] == (
            "memory_not_found"
        )
        assert {i: self.owners(i, tenant) for i in ids} == before

    @rule(tenant=st.sampled_from(TENANTS), user=st.sampled_from(ALL_USERS))
    def purge_user(self, tenant: str, user: str) -> None:
        others = {t: self.ok(t, "GET", "users") for t in TENANTS if t != tenant}
        receipt = self.ok(tenant, "DELETE", f"users/{user}")
        gone = [i for i, r in self.live[tenant].items() if r.user == user]
        assert receipt["user_id"] == user and receipt["messages"] == len(gone)
        assert receipt["memories"] >= len(gone)
        for i in gone:
            del self.live[tenant][i]
        assert {t: self.ok(t, "GET", "users") for t in TENANTS if t != tenant} == others

    @rule(tenant=st.sampled_from(TENANTS))
    def create_webhook(self, tenant: str) -> None:
        body = {"url": f"http://127.0.0.1:9/{tenant}-hook", "events": ["delete"]}
        hook = self.ok(tenant, "POST", "webhooks", json=body)
        self.hooks[tenant].add(hook["id"])
        self.hooks_ever[tenant].add(hook["id"])

    @precondition(lambda self: any(self.hooks.values()))
    @rule(tenant=st.sampled_from(TENANTS), data=st.data())
    def webhook_of_any_tenant(self, tenant: str, data: st.DataObject) -> None:
        hook = data.draw(st.sampled_from(sorted(set().union(*self.hooks.values()))), label="hook")
        mine = hook in self.hooks[tenant]
        for method, path in (
            ("GET", f"webhooks/{hook}/deliveries"),
            ("DELETE", f"webhooks/{hook}"),
        ):
            response = self.call(tenant, method, path)
            assert response.status_code == (200 if mine else 404), response.text
        if mine:
            self.hooks[tenant].discard(hook)
        for owner in TENANTS:
            listed = self.ok(owner, "GET", "webhooks")["items"]
            assert {h["id"] for h in listed} == self.hooks[owner]

    # -- reads -----------------------------------------------------------------------------------

    @rule(tenant=st.sampled_from(TENANTS), data=st.data())
    def get_and_history(self, tenant: str, data: st.DataObject) -> None:
        ident = self.pick_id(data)
        if ident in self.live[tenant]:
            record = self.ok(tenant, "GET", f"memories/{ident}")
            rec = self.live[tenant][ident]
            assert (record["text"], record["user_id"], record["agent_id"]) == (
                rec.text, rec.user, rec.agent,
            )  # fmt: skip
        else:
            self.refused(tenant, "GET", f"memories/{ident}", ident)
        if ident in self.ever[tenant]:
            history = self.ok(tenant, "GET", f"memories/{ident}/history")["items"]
            assert history and {h["memory_id"] for h in history} == {ident}
        else:
            self.refused(tenant, "GET", f"memories/{ident}/history", ident)

    @rule(
        tenant=st.sampled_from(TENANTS), user=st.sampled_from(ALL_USERS),
        agent=st.sampled_from(AGENTS), asker=st.sampled_from(TENANTS),
        word=st.sampled_from(COMMON),
    )  # fmt: skip
    def search_and_context(
        self, tenant: str, user: str, agent: str | None, asker: str, word: str
    ) -> None:
        w = WORDS[asker]
        query = f"{w.marker} {w.cities[0]} {w.sister} {word}"
        scope = _scope(user, agent)
        mine = {i for i, r in self.live[tenant].items() if (r.user, r.agent) == (user, agent)}
        hits = self.ok(tenant, "POST", "search", json={"query": query, "limit": 50, **scope})
        for hit in hits["results"]:
            if hit["kind"] == "message":
                assert hit["id"] in mine
            assert {s["id"] for s in hit["sources"]} <= mine
        self.ok(tenant, "POST", "context", json={"query": query, **scope})

    @rule(tenant=st.sampled_from(TENANTS), user=st.sampled_from(ALL_USERS),
          agent=st.sampled_from(AGENTS), expired=st.booleans())  # fmt: skip
    def semantic(self, tenant: str, user: str, agent: str | None, expired: bool) -> None:
        scope = _scope(user, agent)
        mine = {i for i, r in self.live[tenant].items() if (r.user, r.agent) == (user, agent)}
        facts = self.ok(tenant, "GET", "facts", params={**scope, "include_expired": expired})
        for fact in facts["items"]:
            assert fact["kind"] == "fact" and fact["user_id"] == user
            assert {s["id"] for s in fact["sources"]} <= mine
        profile = self.ok(tenant, "GET", "profile", params=scope)
        assert {source for e in profile["entries"] for source in e["sources"]} <= mine
        entities = self.ok(tenant, "GET", "entities", params=scope)["items"]
        named = {i for e in entities for i in e["memory_ids"]}
        assert named & self.ever[tenant] <= mine

    @rule(tenant=st.sampled_from(TENANTS))
    def events_and_export(self, tenant: str) -> None:
        seen: list[dict[str, Any]] = []
        while True:  # a page at a time, from where the last one ended
            after = seen[-1]["id"] if seen else 0
            items = self.ok(tenant, "GET", "events", params={"after": after, "limit": 7})["items"]
            if not items:
                break
            seen += items
        ids = [e["id"] for e in seen]
        assert ids == sorted(set(ids))
        assert self.ever[tenant] <= {e["memory_id"] for e in seen}
        lines = self.call(tenant, "GET", "export").text.splitlines()
        records = [json.loads(line) for line in lines[1:]]
        messages = {r["id"]: r["text"] for r in records if r["kind"] == "message"}
        assert messages == {i: r.text for i, r in self.live[tenant].items()}

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def listings_equal_the_model(self) -> None:
        for tenant in TENANTS:
            live = self.live[tenant]
            stats = self.ok(tenant, "GET", "stats")
            assert stats["by_kind"].get("message", 0) == len(live)
            users = self.ok(tenant, "GET", "users")["items"]
            counts = {u["user_id"]: u["memories"] - u["facts"] for u in users}
            expected: dict[str, int] = {}
            for rec in live.values():
                expected[rec.user] = expected.get(rec.user, 0) + 1
            assert counts == expected
            agents = {a["agent_id"] for a in self.ok(tenant, "GET", "agents")["items"]}
            assert agents == {r.agent for r in live.values()} - {None}
            for user, agent in {(r.user, r.agent) for r in live.values()}:
                params = {**_scope(user, agent), "kind": "message", "limit": 1000}
                page = self.ok(tenant, "GET", "memories", params=params)
                assert {r["id"]: r["text"] for r in page["items"]} == {
                    i: r.text for i, r in live.items() if (r.user, r.agent) == (user, agent)
                }
                timeline = self.ok(tenant, "GET", "timeline", params=params)
                in_time = sorted(r["id"] for r in timeline["items"])
                assert in_time == sorted(r["id"] for r in page["items"])


Isolation.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestIsolation = Isolation.TestCase


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Memory]]:
    memory = Memory(tmp_path / "engram.db", embedder="test")
    keys = {t: access.create_key(memory.for_tenant(t), "admin")[1] for t in ("one", "two")}
    with TestClient(create_app(memory, webhooks=False, mcp=False)) as client:
        yield client, keys, memory
    memory.close()


def test_the_same_id_imported_into_two_tenants_stays_two_records(
    served: tuple[TestClient, dict[str, str], Memory],
) -> None:
    client, keys, memory = served
    source = memory.for_tenant("source")
    source.add(
        [{"role": "user", "content": "I moved to Porto last month.", "id": "same-1",
          "timestamp": "2024-05-01T10:00:00Z"},
         {"role": "user", "content": "Walks by the river.", "id": "same-2"}],
        user_id="ana",
    )  # fmt: skip
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        source.export(out)
        out.seek(0)
        body = out.read().encode()

    def call(tenant: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {keys[tenant]}"}
        return client.request(method, f"/v1/{path}", headers=headers, **kwargs)

    for tenant in ("one", "two"):
        imported = call(tenant, "POST", "import", content=body)
        assert imported.status_code == 200, imported.text
        assert imported.json()["imported"] >= 2
    # Changing one tenant's copy leaves the other's alone, record and history.
    assert call("one", "PATCH", "memories/same-1", json={"text": "I moved to Faro."}).is_success
    assert call("two", "DELETE", "memories/same-2").json() == {"deleted": "same-2"}
    assert call("one", "GET", "memories/same-1").json()["text"] == "I moved to Faro."
    assert call("two", "GET", "memories/same-1").json()["text"] == "I moved to Porto last month."
    assert call("one", "GET", "memories/same-2").json()["text"] == "Walks by the river."
    assert call("two", "GET", "memories/same-2").status_code == 404
    one = [h["event"] for h in call("one", "GET", "memories/same-1/history").json()["items"]]
    two = [h["event"] for h in call("two", "GET", "memories/same-1/history").json()["items"]]
    assert one[-1] == "update" and "update" not in two
    # Each tenant finds its own copy, and only it.
    for tenant, text in (("one", "Faro"), ("two", "Porto")):
        hits = call(tenant, "POST", "search", json={"query": text, "user_id": "ana"}).json()
        found = [h for h in hits["results"] if h["id"] == "same-1"]
        assert len(found) == 1 and text in found[0]["text"]
    # Purging the user in one tenant leaves the other's copies.
    assert call("one", "DELETE", "users/ana").json()["messages"] == 2
    assert call("one", "GET", "memories/same-1").status_code == 404
    assert call("two", "GET", "memories/same-1").json()["text"] == "I moved to Porto last month."
    # The source tenant was never touched by either.
    assert [r.text for r in source.list(user_id="ana", kind="message").items] == [
        "I moved to Porto last month.", "Walks by the river.",
    ]  # fmt: skip
