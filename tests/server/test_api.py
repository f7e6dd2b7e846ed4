"""The REST API through the in-process ASGI client, as an adversary would use it.

Every endpoint of ``engramdb.server.routes`` over a real SQLite store with the deterministic test
embedder, real API keys and the offline fact rules; no mocks. Every error response of the suite
is checked against the one error shape as it arrives (``conftest.assert_error_shape``);
:func:`test_error_shape` pins that shape for every error code the server can answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from engramdb import access
from engramdb.embedders.base import Vectors
from engramdb.embedders.test import TestEmbedder

if TYPE_CHECKING:
    from conftest import Api, ServeFactory

TENANT = "acme"  # the tenant of requests that name none (Api.tenant)

MAYA = [
    {"role": "user", "name": "Maya", "content": "I live in Lisbon.",
     "timestamp": "2024-01-10T10:00:00Z", "metadata": {"topic": "home"}},
    {"role": "assistant", "content": "Lisbon is lovely in winter.",
     "timestamp": "2024-01-10T10:00:30Z"},
    {"role": "user", "name": "Maya", "content": "I moved to Porto last month.",
     "timestamp": "2024-05-29T09:00:00Z", "metadata": {"topic": "home"}},
    {"role": "user", "name": "Maya", "content": "My sister Inês is a doctor.",
     "timestamp": "2024-05-29T09:01:00Z", "metadata": {"topic": "family"}},
]  # fmt: skip


def seed_maya(api: Api, tenant: str = TENANT) -> list[str]:
    """Maya's four turns (Lisbon in January, Porto and her sister in May), one add each."""
    ids = []
    for message in MAYA:
        body = {"messages": [message], "user_id": "maya", "session_id": message["timestamp"][:10]}
        ids += api.ok("POST", "/v1/memories", json=body, status=201, tenant=tenant)["ids"]
    return ids


def search(api: Api, query: str, tenant: str | None = None, **body: Any) -> list[dict[str, Any]]:
    body = {"query": query, "user_id": "maya", **body}
    found = api.ok("POST", "/v1/search", json=body, tenant=tenant)
    hits: list[dict[str, Any]] = found["results"]
    return hits


def texts(hits: Sequence[dict[str, Any]]) -> list[str]:
    return [h["text"] for h in hits]


# -- service ---------------------------------------------------------------------------------


def test_health_and_ready_need_no_key(api: Api) -> None:
    health = api.ok("GET", "/v1/health", role=None)
    assert health["status"] == "ok" and isinstance(health["version"], str)
    assert api.ok("GET", "/v1/ready", role=None) == {"status": "ready"}


@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
def test_whoami_names_the_tenant_role_and_key(api: Api, role: str) -> None:
    key, token = access.create_key(api.memory.for_tenant("globex"), role, "ci")
    found = api.ok("GET", "/v1/whoami", role=None, headers={"Authorization": f"Bearer {token}"})
    assert found == {"tenant": "globex", "role": role, "key_id": key.id}


def test_stats_and_jobs(api: Api) -> None:
    seed_maya(api)
    stats = api.ok("GET", "/v1/stats")
    assert stats["by_kind"]["message"] == 4
    assert stats["memories"] == stats["by_kind"]["message"] + stats["by_kind"]["fact"]
    assert "path" not in stats  # where the server keeps its files is not the tenant's business
    assert api.ok("GET", "/v1/jobs") == {"pending": 0, "failed": 0}
    other = api.ok("GET", "/v1/stats", tenant="globex")
    assert other["memories"] == 0


def test_process_runs_deferred_extraction(serve: ServeFactory) -> None:
    api = serve(consolidate="deferred")
    seed_maya(api)
    assert api.ok("GET", "/v1/jobs")["pending"] > 0
    assert api.ok("GET", "/v1/facts", params={"user_id": "maya"})["items"] == []
    api.error("POST", "/v1/process", 403, "forbidden", role="reader")
    report = api.ok("POST", "/v1/process")
    assert report["failed"] == 0 and report["facts_added"] >= 2, report
    assert api.ok("GET", "/v1/jobs") == {"pending": 0, "failed": 0}
    facts = api.ok("GET", "/v1/facts", params={"user_id": "maya"})["items"]
    assert "Maya lives in Porto (since April 2024)" in texts(facts)
    api.error("POST", "/v1/process", 400, "invalid_input", params={"limit": 0})


# -- add, get, list --------------------------------------------------------------------------


def test_add_one_string_is_a_user_turn(api: Api) -> None:
    ids = api.ok(
        "POST", "/v1/memories", json={"messages": "I like green tea", "user_id": "ana"},
        status=201,
    )["ids"]  # fmt: skip
    assert len(ids) == 1
    record = api.ok("GET", f"/v1/memories/{ids[0]}")
    assert record["text"] == "I like green tea"
    assert (record["kind"], record["role"], record["user_id"]) == ("message", "user", "ana")


def test_add_a_list_with_timestamps_ids_and_metadata(api: Api) -> None:
    body = {
        "messages": [
            {"role": "user", "name": "Ana", "content": "Booked the flight to Oslo yesterday.",
             "timestamp": "2024-03-02T10:00:00+02:00", "metadata": {"mood": "happy"}, "id": "t-1"},
            {"role": "assistant", "content": "When do you leave?", "timestamp": 1709370060,
             "id": "t-2"},
            {"role": "user", "name": "Ana", "content": "On Friday.", "id": "t-3"},
        ],
        "user_id": "ana",
        "agent_id": "travel-bot",
        "session_id": "s1",
        "metadata": {"channel": "sms"},
    }  # fmt: skip
    assert api.ok("POST", "/v1/memories", json=body, status=201)["ids"] == ["t-1", "t-2", "t-3"]
    first, second, third = (api.ok("GET", f"/v1/memories/t-{i}") for i in (1, 2, 3))
    assert first["occurred_at"] == "2024-03-02T10:00:00+02:00"  # on the speaker's clock
    assert first["metadata"] == {"mood": "happy", "channel": "sms"}
    assert (first["name"], first["agent_id"], first["session_id"]) == ("Ana", "travel-bot", "s1")
    assert [m["text"] for m in first["time_mentions"]] == ["yesterday"]
    assert first["time_mentions"][0]["start"].startswith("2024-03-01")
    assert second["role"] == "assistant" and second["metadata"] == {"channel": "sms"}
    assert second["occurred_at"].startswith("2024-03-02T09:01:00")
    assert third["occurred_at"] > second["occurred_at"]  # the previous one's plus a millisecond
    # The same batch again is the same events: same ids, nothing new stored.
    assert api.ok("POST", "/v1/memories", json=body, status=201)["ids"] == ["t-1", "t-2", "t-3"]
    page = api.ok("GET", "/v1/memories", params={"user_id": "ana", "agent_id": "travel-bot"})
    assert [r["id"] for r in page["items"] if r["kind"] == "message"] == ["t-1", "t-2", "t-3"]


def test_a_bad_message_stores_nothing(api: Api) -> None:
    body = {"messages": [{"content": "fine"}, {"content": "bad", "timestamp": "soonish"}],
            "user_id": "ana"}  # fmt: skip
    api.error("POST", "/v1/memories", 400, "invalid_timestamp", json=body)
    assert api.ok("GET", "/v1/memories", params={"user_id": "ana"})["items"] == []


def test_get_an_unknown_or_foreign_id_is_404(api: Api) -> None:
    ident = seed_maya(api)[0]
    api.error("GET", "/v1/memories/no-such-id", 404, "memory_not_found")
    # Another tenant's key cannot see it, and the answer does not say it exists.
    api.error("GET", f"/v1/memories/{ident}", 404, "memory_not_found", tenant="globex")
    api.error("GET", f"/v1/memories/{ident}/history", 404, "memory_not_found", tenant="globex")
    assert search(api, "Lisbon", tenant="globex") == []


def test_list_pages_through_every_memory_once_in_order(api: Api) -> None:
    messages = [{"content": f"note number {i}", "id": f"n{i:02d}"} for i in range(25)]
    api.ok("POST", "/v1/memories", json={"messages": messages, "user_id": "pat"}, status=201)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"user_id": "pat", "kind": "message", "limit": 10}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.ok("GET", "/v1/memories", params=params)
        assert len(page["items"]) <= 10
        seen += [r["id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [m["id"] for m in messages]
    api.error("GET", "/v1/memories", 400, "invalid_cursor",
              params={"user_id": "pat", "cursor": "not-a-cursor"})  # fmt: skip
    first = api.ok("GET", "/v1/memories", params={"user_id": "pat", "limit": 10})
    api.error("GET", "/v1/memories", 400, "invalid_cursor",
              params={"user_id": "someone-else", "cursor": first["next_cursor"]})  # fmt: skip


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "missing_scope"),
        ({"user_id": "pat", "limit": 0}, "invalid_input"),
        ({"user_id": "pat", "limit": 1001}, "invalid_input"),
        ({"user_id": "pat", "limit": "ten"}, "invalid_input"),
        ({"user_id": "pat", "kind": "poem"}, "invalid_filter"),
    ],
)
def test_list_refuses_bad_arguments(api: Api, params: dict[str, Any], code: str) -> None:
    api.error("GET", "/v1/memories", 400, code, params=params)


def _timeline(api: Api, tenant: str | None = None, **params: Any) -> list[dict[str, Any]]:
    """Every item of a timeline, paged through ``next_cursor`` (3 at a time by default)."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 3, **params}
    while True:
        page = api.ok("GET", "/v1/timeline", params=query, tenant=tenant)
        assert set(page) == {"items", "next_cursor"}
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


def test_timeline_pages_in_the_order_things_happened(api: Api) -> None:
    ids = seed_maya(api)
    early = {"role": "user", "name": "Maya", "content": "We adopted a cat named Miso.",
             "timestamp": "2023-12-24T18:00:00Z"}  # recorded last, said first  # fmt: skip
    [miso] = api.ok("POST", "/v1/memories", status=201,
                    json={"messages": [early], "user_id": "maya"})["ids"]  # fmt: skip
    turns = _timeline(api, user_id="maya")
    assert [t["id"] for t in turns] == [miso, *ids]
    assert {t["kind"] for t in turns} == {"message"}
    every = _timeline(api, user_id="maya", kind="all")
    facts = _timeline(api, user_id="maya", kind="fact")
    assert len(every) == len(turns) + len(facts) and facts
    said = [t["occurred_at"] for t in every]
    assert said == sorted(said)
    # since and until include their instant.
    window = _timeline(api, user_id="maya", since="2024-01-10T10:00:30Z",
                       until="2024-05-29T09:00:00Z")  # fmt: skip
    assert [t["id"] for t in window] == ids[1:3]
    assert _timeline(api, user_id="maya", session_id="2024-05-29", limit=1) == turns[3:]
    assert _timeline(api, user_id="maya", tenant="globex") == []  # another tenant: nothing


def test_timeline_refuses_bad_arguments_and_foreign_cursors(api: Api) -> None:
    seed_maya(api)
    for params, code in [
        ({}, "missing_scope"),
        ({"user_id": "maya", "limit": 0}, "invalid_input"),
        ({"user_id": "maya", "limit": 1001}, "invalid_input"),
        ({"user_id": "maya", "kind": "poem"}, "invalid_filter"),
        ({"user_id": "maya", "since": "not a date"}, "invalid_timestamp"),
        ({"user_id": "maya", "since": "2024-02-01", "until": "2024-01-01"}, "invalid_input"),
        ({"user_id": "maya", "cursor": "garbage"}, "invalid_cursor"),
    ]:
        api.error("GET", "/v1/timeline", 400, code, params=params)
    first = api.ok("GET", "/v1/timeline", params={"user_id": "maya", "limit": 1})
    listed = api.ok("GET", "/v1/memories", params={"user_id": "maya", "limit": 1})
    for params in [
        {"user_id": "tom", "cursor": first["next_cursor"]},  # another scope
        {"user_id": "maya", "since": "2024-01-01", "cursor": first["next_cursor"]},  # period
        {"user_id": "maya", "cursor": listed["next_cursor"]},  # a listing's cursor
    ]:
        api.error("GET", "/v1/timeline", 400, "invalid_cursor", params=params)
    # A reader may read it; another tenant's key with this cursor gets nothing of maya's.
    api.ok("GET", "/v1/timeline", params={"user_id": "maya"}, role="reader")
    api.error("GET", "/v1/timeline", 400, "invalid_cursor", tenant="globex",
              params={"user_id": "maya", "cursor": first["next_cursor"]})  # fmt: skip


# -- update, history, delete ------------------------------------------------------------------


def test_update_keeps_every_version_in_history(api: Api) -> None:
    ident = api.ok(
        "POST", "/v1/memories", status=201,
        json={"messages": [{"content": "My cat is called Tom", "metadata": {"a": 1, "b": 2}}],
              "user_id": "ana"},
    )["ids"][0]  # fmt: skip
    changed = api.ok(
        "PATCH", f"/v1/memories/{ident}",
        json={"text": "My cat is called Felix", "metadata": {"b": None, "c": 3}},
    )  # fmt: skip
    assert changed["text"] == "My cat is called Felix"
    assert changed["metadata"] == {"a": 1, "c": 3}
    assert api.ok("GET", f"/v1/memories/{ident}")["text"] == "My cat is called Felix"
    history = api.ok("GET", f"/v1/memories/{ident}/history")["items"]
    assert [h["event"] for h in history] == ["create", "update"]
    assert history[1]["before"]["text"] == "My cat is called Tom"
    assert history[1]["after"]["text"] == "My cat is called Felix"
    hits = api.ok("POST", "/v1/search", json={"query": "Felix", "user_id": "ana"})["results"]
    assert ident in [h["id"] for h in hits]
    api.error("PATCH", f"/v1/memories/{ident}", 400, "invalid_input", json={})
    api.error("PATCH", f"/v1/memories/{ident}", 400, "invalid_input", json={"text": ""})
    api.error("PATCH", "/v1/memories/nope", 404, "memory_not_found", json={"text": "x"})
    api.error("PATCH", f"/v1/memories/{ident}", 403, "forbidden", json={"text": "x"},
              role="reader")  # fmt: skip


def test_delete_then_404_and_history_keeps_no_content(api: Api) -> None:
    ids = seed_maya(api)
    assert api.ok("DELETE", f"/v1/memories/{ids[0]}") == {"deleted": ids[0]}
    message = api.error("GET", f"/v1/memories/{ids[0]}", 404, "memory_not_found")
    assert ids[0] in message
    api.error("DELETE", f"/v1/memories/{ids[0]}", 404, "memory_not_found")
    history = api.ok("GET", f"/v1/memories/{ids[0]}/history")["items"]
    assert [h["event"] for h in history] == ["create", "delete"]
    assert "Lisbon" not in json.dumps(history)
    assert "I live in Lisbon." not in texts(search(api, "Lisbon"))


def test_batch_update_checks_every_id_first(api: Api) -> None:
    a, b = _two_notes(api)
    body = {"updates": [{"id": a, "text": "first, corrected"}, {"id": "nope", "text": "x"},
                        {"id": b, "metadata": {"k": 1}}]}  # fmt: skip
    api.error("POST", "/v1/memories/batch-update", 404, "memory_not_found", json=body)
    assert api.ok("GET", f"/v1/memories/{a}")["text"] == "first note"
    assert api.ok("GET", f"/v1/memories/{b}")["metadata"] == {}
    api.error("POST", "/v1/memories/batch-update", 400, "invalid_input",
              json={"updates": [{"id": a}]})  # fmt: skip
    body["updates"].pop(1)
    items = api.ok("POST", "/v1/memories/batch-update", json=body)["items"]
    assert [(i["id"], i["text"], i["metadata"]) for i in items] == [
        (a, "first, corrected", {}), (b, "second note", {"k": 1}),
    ]  # fmt: skip
    assert [h["event"] for h in api.ok("GET", f"/v1/memories/{a}/history")["items"]] == [
        "create", "update",
    ]  # fmt: skip


@pytest.mark.parametrize("fact_first", [False, True])
def test_batch_update_of_a_message_and_its_fact_reports_the_fact_replaced(
    api: Api, fact_first: bool
) -> None:
    """Correcting a message replaces the facts of its old text: a fact of it edited in the
    same batch is reported as replaced, in either order (message first used to answer 404
    half-way; fact first, the edited fact that was then deleted); a fact of another message
    is edited."""
    ids = seed_maya(api)
    facts = api.ok("GET", "/v1/facts", params={"user_id": "maya"})["items"]
    porto = next(f for f in facts if f["value"] == "Porto")
    sister = next(f for f in facts if "sister" in f["text"])
    assert [s["id"] for s in porto["sources"]] == [ids[2]]
    assert [s["id"] for s in sister["sources"]] == [ids[3]]
    pair = [
        {"id": ids[2], "text": "I moved to Braga last month."},
        {"id": porto["id"], "metadata": {"checked": True}},
    ]
    body = {"updates": [*(pair[::-1] if fact_first else pair),
                        {"id": sister["id"], "metadata": {"checked": True}}]}  # fmt: skip
    done = api.ok("POST", "/v1/memories/batch-update", json=body)
    assert done["replaced"] == [porto["id"]]
    assert [(i["id"], i["metadata"]) for i in done["items"]] == [
        (ids[2], {"topic": "home"}), (sister["id"], {"checked": True}),
    ]  # fmt: skip
    assert done["items"][0]["text"] == "I moved to Braga last month."
    api.error("GET", f"/v1/memories/{porto['id']}", 404, "memory_not_found")
    history = api.ok("GET", f"/v1/memories/{porto['id']}/history")["items"]
    assert "update" not in [h["event"] for h in history]  # not edited, then deleted: replaced
    now = api.ok("GET", "/v1/facts", params={"user_id": "maya"})["items"]
    assert "Braga" in [f["value"] for f in now] and "Porto" not in [f["value"] for f in now]
    # A metadata-only edit of a message keeps its facts: then the fact is edited too.
    braga = next(f for f in now if f["value"] == "Braga")
    body = {"updates": [{"id": ids[2], "metadata": {"seen": 1}},
                        {"id": braga["id"], "metadata": {"checked": True}}]}  # fmt: skip
    done = api.ok("POST", "/v1/memories/batch-update", json=body)
    assert done["replaced"] == [] and [i["id"] for i in done["items"]] == [ids[2], braga["id"]]
    assert api.ok("GET", f"/v1/memories/{braga['id']}")["metadata"] == {"checked": True}


def _two_notes(api: Api) -> tuple[str, str]:
    ids = api.ok(
        "POST", "/v1/memories", status=201,
        json={"messages": [{"content": "first note"}, {"content": "second note"}],
              "user_id": "ana"},
    )["ids"]  # fmt: skip
    return ids[0], ids[1]


def test_batch_delete_checks_every_id_first(api: Api) -> None:
    a, b = _two_notes(api)
    api.error("POST", "/v1/memories/batch-delete", 404, "memory_not_found",
              json={"ids": [a, "nope", b]})  # fmt: skip
    assert api.ok("GET", f"/v1/memories/{a}")["id"] == a
    assert api.ok("GET", f"/v1/memories/{b}")["id"] == b
    api.error("POST", "/v1/memories/batch-delete", 403, "forbidden", json={"ids": [a]},
              role="reader")  # fmt: skip
    assert api.ok("POST", "/v1/memories/batch-delete", json={"ids": [a, b, a]}) == {
        "deleted": [a, b]
    }
    for ident in (a, b):
        api.error("GET", f"/v1/memories/{ident}", 404, "memory_not_found")


def test_batch_delete_of_a_message_and_its_fact(api: Api) -> None:
    """Deleting a message deletes the facts derived from it: naming both in one batch must not
    fail half-way with a 404 for the fact the first delete already took."""
    ids = seed_maya(api)
    facts = api.ok("GET", "/v1/facts", params={"user_id": "maya"})["items"]
    porto = next(f for f in facts if f["value"] == "Porto")
    assert [s["id"] for s in porto["sources"]] == [ids[2]]
    deleted = api.ok("POST", "/v1/memories/batch-delete", json={"ids": [ids[2], porto["id"]]})
    assert deleted == {"deleted": [ids[2], porto["id"]]}
    for ident in (ids[2], porto["id"]):
        api.error("GET", f"/v1/memories/{ident}", 404, "memory_not_found")


# -- read path -------------------------------------------------------------------------------


def test_search_hits_have_explain_sources_and_dates(api: Api) -> None:
    ids = seed_maya(api)
    hits = search(api, "Where does Maya live now?")
    assert hits, "no hits"
    top = hits[0]
    assert top["text"] == "Maya lives in Porto (since April 2024)"
    assert top["kind"] == "fact" and top["valid_from"].startswith("2024-04-01")
    assert top["valid_to"] is None and top["superseded_by"] is None
    assert [s["id"] for s in top["sources"]] == [ids[2]]
    assert top["sources"][0]["occurred_at"] == "2024-05-29T09:00:00+00:00"
    for hit in hits:
        assert isinstance(hit["score"], float) and hit["score"] > 0
        assert isinstance(hit["explain"], dict) and hit["explain"]
        assert set(hit["explain"]) & {"lexical", "dense"}, hit["explain"]
        assert "user_id" not in hit and "recorded_at" not in hit
    turn = next(h for h in hits if h["id"] == ids[2])
    assert turn["occurred_at"] == "2024-05-29T09:00:00+00:00"
    assert turn["time_mentions"][0]["text"] == "last month"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_search_as_of_answers_as_if_it_were_then(api: Api) -> None:
    seed_maya(api)
    then = search(api, "Where does Maya live?", as_of="2024-03-01T00:00:00Z")
    assert then[0]["text"] == "Maya lives in Lisbon"
    assert all(h["occurred_at"] <= "2024-03-01" for h in then), texts(then)
    assert not {"I moved to Porto last month.", "My sister Inês is a doctor."} & set(texts(then))


def test_search_include_expired_and_filters(api: Api) -> None:
    seed_maya(api)
    everything = search(api, "Maya live Lisbon", limit=50)
    lisbon = next(h for h in everything if h["text"] == "Maya lives in Lisbon")
    assert lisbon["valid_to"].startswith("2024-04-01") and lisbon["superseded_by"]
    current = search(api, "Maya live Lisbon", limit=50, include_expired=False)
    assert "Maya lives in Lisbon" not in texts(current)
    assert "I live in Lisbon." in texts(current)
    turns = search(api, "Maya live Lisbon", limit=50, filters={"kinds": ["message"]})
    assert turns and {h["kind"] for h in turns} == {"message"}
    family = search(api, "sister doctor", filters={"metadata": {"topic": "family"}})
    assert texts(family) == ["My sister Inês is a doctor."]
    may = search(api, "Maya", limit=50, filters={"since": "2024-05-01", "until": "2024-05-31"})
    assert may and all(h["occurred_at"].startswith("2024-0") for h in may)
    assert all("2024-05-01" <= h["occurred_at"] <= "2024-05-31T23:59" for h in may), texts(may)
    session = search(api, "Lisbon", session_id="2024-01-10")
    assert session and {h["session_id"] for h in session} == {"2024-01-10"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "x"}, "missing_scope"),
        ({"query": "", "user_id": "maya"}, "invalid_input"),
        ({"query": "x", "user_id": "maya", "limit": 0}, "invalid_input"),
        ({"query": "x", "user_id": "maya", "as_of": "the day after"}, "invalid_timestamp"),
        ({"query": "x", "user_id": "maya", "filters": {"colour": "red"}}, "invalid_filter"),
        ({"query": "x", "user_id": "maya", "filters": {"kinds": 3}}, "invalid_filter"),
        ({"query": "x", "user_id": "maya", "filters": {"kinds": ["poem"]}}, "invalid_filter"),
        ({"query": "x", "user_id": "maya", "surprise": 1}, "invalid_input"),
        ({"query": 42, "user_id": "maya"}, "invalid_input"),
    ],
)
def test_search_refuses_bad_input(api: Api, body: dict[str, Any], code: str) -> None:
    api.error("POST", "/v1/search", 400, code, json=body)


def test_context_packs_profile_facts_and_dated_turns(api: Api) -> None:
    seed_maya(api)
    found = api.ok(
        "POST", "/v1/context", json={"query": "Where does Maya live?", "user_id": "maya"}
    )
    text = found["context"]
    assert "Maya lives in Porto" in text
    assert "2024" in text
    earlier = api.ok(
        "POST", "/v1/context",
        json={"query": "Where does Maya live?", "user_id": "maya", "as_of": "2024-02-01"},
    )["context"]  # fmt: skip
    assert "Porto" not in earlier and "Lisbon" in earlier
    small = api.ok(
        "POST", "/v1/context",
        json={"query": "Where does Maya live?", "user_id": "maya", "max_tokens": 30},
    )["context"]  # fmt: skip
    assert len(small) < len(text)
    api.error("POST", "/v1/context", 400, "missing_scope", json={"query": "x"})


# -- semantic --------------------------------------------------------------------------------


def test_facts_profile_and_entities_from_the_offline_rules(api: Api) -> None:
    ids = seed_maya(api)
    current = api.ok("GET", "/v1/facts", params={"user_id": "maya"})
    assert current["next_cursor"] is None
    by_text = {f["text"]: f for f in current["items"]}
    assert set(by_text) == {
        "Maya lives in Porto (since April 2024)", "Inês is Maya's sister", "Inês works as a doctor",
    }  # fmt: skip
    porto = by_text["Maya lives in Porto (since April 2024)"]
    assert (porto["subject"], porto["attribute"], porto["value"]) == ("Maya", "lives_in", "Porto")
    assert [s["id"] for s in porto["sources"]] == [ids[2]]
    everything = api.ok("GET", "/v1/facts", params={"user_id": "maya", "include_expired": "true"})[
        "items"
    ]
    lisbon = next(f for f in everything if f["value"] == "Lisbon")
    assert lisbon["superseded_by"] == porto["id"] and lisbon["expired_at"] is not None
    then = api.ok("GET", "/v1/facts", params={"user_id": "maya", "as_of": "2024-02-01"})["items"]
    assert texts(then) == ["Maya lives in Lisbon"]
    paged = api.ok("GET", "/v1/facts", params={"user_id": "maya", "limit": 2})
    rest = api.ok(
        "GET", "/v1/facts", params={"user_id": "maya", "limit": 2, "cursor": paged["next_cursor"]}
    )
    assert {f["id"] for f in paged["items"] + rest["items"]} == {f["id"] for f in current["items"]}

    profile = api.ok("GET", "/v1/profile", params={"user_id": "maya"})
    assert profile["user_id"] == "maya" and profile["truncated"] is False
    entries = {e["attribute"]: e for e in profile["entries"]}
    assert entries["lives_in"]["value"] == "Porto"
    assert entries["lives_in"]["fact_id"] == porto["id"]
    assert entries["lives_in"]["sources"] == [ids[2]]
    assert entries["sister"]["value"] == "Inês"
    assert "Maya lives in Porto" in profile["text"]

    entities = api.ok("GET", "/v1/entities", params={"user_id": "maya"})["items"]
    ines = next(e for e in entities if e["name"] == "Inês")
    assert (ines["type"], ines["relation"], ines["relation_of"]) == ("person", "sister", "Maya")
    assert ids[3] in ines["memory_ids"]
    named = api.ok("GET", "/v1/entities", params={"user_id": "maya", "name": "Inês"})["items"]
    assert [e["id"] for e in named] == [ines["id"]]
    api.error("GET", "/v1/facts", 400, "missing_scope")
    api.error("GET", "/v1/profile", 400, "missing_scope")
    api.error("GET", "/v1/entities", 400, "missing_scope")
    api.error("GET", "/v1/facts", 400, "invalid_cursor",
              params={"user_id": "maya", "cursor": "garbage"})  # fmt: skip


# -- users, agents, erasure ------------------------------------------------------------------


def test_users_and_agents_with_counts(api: Api) -> None:
    seed_maya(api)
    add = [
        ({"user_id": "maya", "agent_id": "coach"}, ["Training for the 10k."]),
        ({"user_id": "tom", "agent_id": "coach"}, ["I ran 5 km.", "Knee hurts."]),
        ({"agent_id": "planner"}, ["Agent-only note."]),
    ]
    for scope, contents in add:
        body = {"messages": [{"content": c} for c in contents], **scope}
        api.ok("POST", "/v1/memories", json=body, status=201)
    users = {u["user_id"]: u for u in api.ok("GET", "/v1/users")["items"]}
    assert list(users) == ["maya", "tom"]
    maya_facts = len(api.ok("GET", "/v1/facts", params={"user_id": "maya"})["items"])
    maya_facts += len(
        api.ok("GET", "/v1/facts", params={"user_id": "maya", "agent_id": "coach"})["items"]
    )
    assert users["maya"]["agents"] == ["coach"]
    assert users["maya"]["facts"] >= maya_facts >= 3
    assert users["maya"]["memories"] == 4 + 1 + users["maya"]["facts"]
    assert users["maya"]["last_at"] is not None
    assert users["tom"]["agents"] == ["coach"]
    agents = {a["agent_id"]: a for a in api.ok("GET", "/v1/agents")["items"]}
    assert list(agents) == ["coach", "planner"]
    assert sorted(agents["coach"]["users"]) == ["maya", "tom"]
    assert agents["planner"]["users"] == []
    assert agents["planner"]["memories"] == 1
    assert api.ok("GET", "/v1/users", role="reader")["items"]
    assert api.ok("GET", "/v1/users", tenant="globex") == {"items": []}


def test_purge_user_returns_a_receipt(api: Api) -> None:
    seed_maya(api)
    api.ok("POST", "/v1/memories", json={"messages": "Tom's note", "user_id": "tom"}, status=201)
    api.error("DELETE", "/v1/users/maya", 403, "forbidden", role="writer")
    stats = api.ok("GET", "/v1/stats")
    removed = api.ok("DELETE", "/v1/users/maya")
    assert removed["user_id"] == "maya"
    assert removed["messages"] == 4 and removed["facts"] == stats["by_kind"]["fact"]
    assert removed["memories"] == removed["messages"] + removed["facts"]
    assert removed["entities"] >= 2
    assert api.ok("GET", "/v1/memories", params={"user_id": "maya"})["items"] == []
    assert [u["user_id"] for u in api.ok("GET", "/v1/users")["items"]] == ["tom"]
    again = api.ok("DELETE", "/v1/users/maya")
    assert again["memories"] == 0


def test_purge_tenant_needs_its_name_and_spares_the_others(api: Api) -> None:
    seed_maya(api)
    seed_maya(api, tenant="globex")
    api.error("DELETE", "/v1/tenant", 400, "invalid_input")
    message = api.error("DELETE", "/v1/tenant", 400, "invalid_input", params={"confirm": "globex"})
    assert TENANT in message
    api.error("DELETE", "/v1/tenant", 403, "forbidden", params={"confirm": TENANT}, role="writer")
    assert api.ok("GET", "/v1/stats")["memories"] > 0
    receipt = api.ok("DELETE", "/v1/tenant", params={"confirm": TENANT})
    assert receipt["tenant"] == TENANT
    assert receipt["messages"] == 4
    assert receipt["api_keys"] == 2  # the admin and the writer key: both gone
    api.error("GET", "/v1/whoami", 401, "unauthorized")
    assert len(search(api, "Where does Maya live?", tenant="globex")) > 0


# -- export, import --------------------------------------------------------------------------


def test_export_streams_jsonl_that_imports_into_another_tenant(api: Api) -> None:
    seed_maya(api)
    api.ok("POST", "/v1/memories", json={"messages": "Tom's note", "user_id": "tom"}, status=201)
    with api.client.stream(
        "GET", "/v1/export", headers={"Authorization": f"Bearer {api.key('reader')}"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = list(response.iter_lines())
    records = [json.loads(line) for line in lines if line]
    assert "engramdb_export" in records[0]
    assert len(records) - 1 == api.ok("GET", "/v1/stats")["memories"]
    just_tom = api.call("GET", "/v1/export", params={"user_id": "tom"}).text.splitlines()
    assert [json.loads(line)["text"] for line in just_tom[1:]] == ["Tom's note"]

    payload = "\n".join(lines).encode()
    api.error("POST", "/v1/import", 403, "forbidden", content=payload, tenant="globex",
              role="reader")  # fmt: skip
    assert api.ok("POST", "/v1/import", content=payload, tenant="globex", role="writer") == {
        "imported": len(records) - 1
    }
    again = api.ok("POST", "/v1/import", content=payload, tenant="globex", role="writer")
    assert again == {"imported": 0}  # already there: an interrupted import can be sent again
    for query in ("Where does Maya live?", "sister", "Lisbon winter"):
        here = search(api, query, limit=20)
        there = search(api, query, limit=20, tenant="globex")
        assert [(h["id"], h["text"], h["score"]) for h in there] == [
            (h["id"], h["text"], h["score"]) for h in here
        ]


@pytest.mark.parametrize(
    ("body", "params", "code"),
    [
        (b"this is not json\n", {}, "import_format"),
        (b'{"engramdb_export": 2, "embedder": "test:hash-64"}\n[1, 2]\n', {}, "import_format"),
        (b"\xff\xfe not UTF-8", {}, "import_format"),
        (b'{"role": "user", "content": "hi"}\n', {"format": "nonsense"}, "invalid_input"),
        (b'{"role": "user", "content": "hi"}\n', {"format": "jsonl"}, "missing_scope"),
        (b'{"role": "user", "content": "hi"}\n', {"format": "jsonl", "user_id": ""},
         "invalid_input"),
    ],
)  # fmt: skip
def test_import_refuses_what_it_cannot_read(
    api: Api, body: bytes, params: dict[str, str], code: str
) -> None:
    message = api.error("POST", "/v1/import", 400, code, content=body, params=params)
    assert "engram-import-" not in message  # the server's temporary file is not the client's
    assert api.ok("GET", "/v1/stats")["memories"] == 0


def test_import_of_messages_takes_a_scope(api: Api) -> None:
    lines = b'{"role": "user", "content": "I play the cello."}\n{"content": "Since 2019."}\n'
    scope = {"user_id": "ana", "agent_id": "tutor"}
    imported = api.ok("POST", "/v1/import", content=lines, params={"format": "jsonl", **scope})
    assert imported == {"imported": 2}
    page = api.ok("GET", "/v1/memories", params={**scope, "kind": "message"})
    assert [r["text"] for r in page["items"]] == ["I play the cello.", "Since 2019."]


# -- events ----------------------------------------------------------------------------------


def test_events_feed_types_paging_and_deleted_content(api: Api) -> None:
    a, b = _two_notes(api)
    api.ok("PATCH", f"/v1/memories/{a}", json={"text": "first note, edited"})
    api.ok("DELETE", f"/v1/memories/{b}")
    feed = api.ok("GET", "/v1/events", role="reader")
    items = feed["items"]
    assert [(e["type"], e["memory_id"]) for e in items] == [
        ("memory.create", a), ("memory.create", b), ("memory.update", a), ("memory.delete", b),
    ]  # fmt: skip
    assert feed["next_after"] == items[-1]["id"]
    assert [e["id"] for e in items] == sorted(e["id"] for e in items)
    for event in items:
        assert set(event) == {"id", "type", "memory_id", "at", "actor", "data"}
    assert items[2]["data"]["text"] == "first note, edited"
    assert all(e["data"] is None for e in items if e["memory_id"] == b)  # deleted: no content
    assert "second note" not in json.dumps(feed)
    first = api.ok("GET", "/v1/events", params={"limit": 2})
    assert [e["id"] for e in first["items"]] == [e["id"] for e in items[:2]]
    rest = api.ok("GET", "/v1/events", params={"after": first["next_after"]})
    assert [e["id"] for e in rest["items"]] == [e["id"] for e in items[2:]]
    end = api.ok("GET", "/v1/events", params={"after": feed["next_after"]})
    assert end == {"items": [], "next_after": feed["next_after"]}
    assert api.ok("GET", "/v1/events", tenant="globex")["items"] == []
    api.error("GET", "/v1/events", 400, "invalid_input", params={"limit": 0})
    api.error("GET", "/v1/events", 400, "invalid_input", params={"after": "x"})


# -- keys, webhooks --------------------------------------------------------------------------


def test_keys_over_the_api(api: Api) -> None:
    made = api.ok("POST", "/v1/keys", json={"role": "writer", "name": "ingest"}, status=201)
    token = made["key"]
    assert made["role"] == "writer" and made["tenant"] == TENANT and made["name"] == "ingest"
    assert token.startswith(made["prefix"])
    headers = {"Authorization": f"Bearer {token}"}
    assert api.ok("GET", "/v1/whoami", role=None, headers=headers)["key_id"] == made["id"]
    listing = api.call("GET", "/v1/keys")
    assert listing.status_code == 200
    assert token not in listing.text and '"key"' not in listing.text
    assert made["id"] in [k["id"] for k in listing.json()["items"]]
    api.error("GET", "/v1/keys", 403, "forbidden", role="writer")
    api.error("POST", "/v1/keys", 403, "forbidden", json={"role": "admin"}, role="writer")
    api.error("POST", "/v1/keys", 400, "invalid_input", json={"role": "owner"})
    # Another tenant's admin cannot see or revoke it.
    assert made["id"] not in [k["id"] for k in api.ok("GET", "/v1/keys", tenant="globex")["items"]]
    api.error("DELETE", f"/v1/keys/{made['id']}", 404, "not_found", tenant="globex")
    assert api.ok("DELETE", f"/v1/keys/{made['id']}") == {"revoked": made["id"]}
    response = api.call("GET", "/v1/whoami", role=None, headers=headers)
    assert response.status_code == 401
    assert api.error_of(response)["code"] == "unauthorized"
    api.error("DELETE", f"/v1/keys/{made['id']}", 404, "not_found")
    api.error("DELETE", "/v1/keys/nope", 404, "not_found")
    revoked = next(k for k in api.ok("GET", "/v1/keys")["items"] if k["id"] == made["id"])
    assert revoked["revoked_at"] is not None


def test_webhooks_secret_only_on_create(api: Api) -> None:
    made = api.ok(
        "POST", "/v1/webhooks", status=201,
        json={"url": "http://127.0.0.1:9/hook", "events": ["create", "delete"]},
    )  # fmt: skip
    assert made["secret"].startswith("whsec_")
    assert made["url"] == "http://127.0.0.1:9/hook" and made["events"] == ["create", "delete"]
    listing = api.call("GET", "/v1/webhooks")
    assert made["secret"] not in listing.text and '"secret"' not in listing.text
    assert [h["id"] for h in listing.json()["items"]] == [made["id"]]
    assert api.ok("GET", f"/v1/webhooks/{made['id']}/deliveries")["items"] == []
    api.error("GET", f"/v1/webhooks/{made['id']}/deliveries", 400, "invalid_input",
              params={"limit": 0})  # fmt: skip
    api.error("GET", "/v1/webhooks/nope/deliveries", 404, "not_found")
    api.error("GET", "/v1/webhooks", 403, "forbidden", role="writer")
    api.error("POST", "/v1/webhooks", 400, "invalid_input", json={"url": "ftp://example.com"})
    api.error("POST", "/v1/webhooks", 400, "invalid_input",
              json={"url": "http://example.com", "events": ["explode"]})  # fmt: skip
    assert api.ok("GET", "/v1/webhooks", tenant="globex")["items"] == []
    api.error("DELETE", f"/v1/webhooks/{made['id']}", 404, "not_found", tenant="globex")
    assert api.ok("DELETE", f"/v1/webhooks/{made['id']}") == {"deleted": made["id"]}
    assert api.ok("GET", "/v1/webhooks")["items"] == []
    api.error("DELETE", f"/v1/webhooks/{made['id']}", 404, "not_found")


# -- auth ------------------------------------------------------------------------------------


def test_no_key_is_401_with_www_authenticate(api: Api) -> None:
    response = api.call("GET", "/v1/whoami", role=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert api.error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer ek_not-a-real-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "ek_not-a-real-key"},
        {"X-API-Key": ""},
    ],
)
def test_unknown_key_is_401(api: Api, headers: dict[str, str]) -> None:
    api.key()  # the store has keys; this is not one of them
    response = api.call("POST", "/v1/search", role=None, headers=headers,
                        json={"query": "x", "user_id": "maya"})  # fmt: skip
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert api.error_of(response)["code"] == "unauthorized"


def test_x_api_key_header_works(api: Api) -> None:
    found = api.ok("GET", "/v1/whoami", role=None, headers={"X-API-Key": api.key("reader")})
    assert found["role"] == "reader" and found["tenant"] == TENANT


def test_reader_cannot_write_and_writer_cannot_administer(api: Api) -> None:
    seed_maya(api)
    ident = api.ok("GET", "/v1/memories", params={"user_id": "maya"})["items"][0]["id"]
    for method, path, body in [
        ("POST", "/v1/memories", {"messages": "x", "user_id": "maya"}),
        ("PATCH", f"/v1/memories/{ident}", {"text": "x"}),
        ("DELETE", f"/v1/memories/{ident}", None),
        ("POST", "/v1/memories/batch-delete", {"ids": [ident]}),
        ("POST", "/v1/import", None),
        ("POST", "/v1/process", None),
    ]:
        message = api.error(method, path, 403, "forbidden", json=body, role="reader")
        assert "writer" in message
    for method, path, body in [
        ("POST", "/v1/keys", {"role": "reader"}),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/"}),
        ("DELETE", "/v1/users/maya", None),
        ("DELETE", f"/v1/tenant?confirm={TENANT}", None),
    ]:
        message = api.error(method, path, 403, "forbidden", json=body, role="writer")
        assert "admin" in message
    # Nothing changed, and a reader still reads.
    assert api.ok("GET", f"/v1/memories/{ident}", role="reader")["id"] == ident
    assert search(api, "Lisbon")
    assert api.ok("GET", "/v1/stats", role="reader")["by_kind"]["message"] == 4


def test_no_auth_acts_as_admin_of_the_memory_tenant(serve: ServeFactory) -> None:
    api = serve(app_options={"auth": False})
    assert api.ok("GET", "/v1/whoami", role=None) == {
        "tenant": "default", "role": "admin", "key_id": None,
    }  # fmt: skip
    assert api.ok("GET", "/v1/keys", role=None) == {"items": []}


# -- limits ----------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(serve: ServeFactory) -> None:
    api = serve(rate_limit=20)  # 20 a minute, in bursts of up to 10 (a tenth, at least ten)
    statuses = [api.call("GET", "/v1/whoami").status_code for _ in range(25)]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429 and statuses.count(429) >= 10, statuses
    response = api.call("POST", "/v1/search", json={"query": "x", "user_id": "maya"})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert api.error_of(response)["code"] == "rate_limited"
    # The limit is per key: another key of the same tenant is not held back, nor is health.
    assert api.call("GET", "/v1/whoami", role="reader").status_code == 200
    assert api.call("GET", "/v1/health", role=None).status_code == 200


def test_rate_limit_zero_is_off(serve: ServeFactory) -> None:
    api = serve(rate_limit=0)
    assert {api.call("GET", "/v1/whoami").status_code for _ in range(40)} == {200}


def _big_body(size: int) -> bytes:
    return json.dumps({"messages": "x" * size, "user_id": "maya"}).encode()


def test_body_over_the_limit_is_413_with_content_length(serve: ServeFactory) -> None:
    api = serve(max_body_bytes=2000)
    assert api.ok("POST", "/v1/memories", content=_big_body(1500), status=201,
                  headers={"Content-Type": "application/json"})  # fmt: skip
    response = api.call("POST", "/v1/memories", content=_big_body(2500),
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.request.headers["content-length"] == str(len(_big_body(2500)))
    assert response.status_code == 413
    assert api.error_of(response)["code"] == "body_too_large"
    assert len(api.ok("GET", "/v1/memories", params={"user_id": "maya"})["items"]) == 1


def test_body_over_the_limit_is_413_when_chunked(serve: ServeFactory) -> None:
    api = serve(max_body_bytes=2000)
    body = _big_body(5000)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    response = api.call("POST", "/v1/memories", content=chunks(),
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert api.error_of(response)["code"] == "body_too_large"
    assert api.ok("GET", "/v1/memories", params={"user_id": "maya"})["items"] == []


def test_import_may_be_ten_times_larger(serve: ServeFactory) -> None:
    api = serve(max_body_bytes=2000)
    lines = [
        json.dumps({"role": "user", "content": f"line {i} " + "y" * 80, "user_id": "maya"})
        for i in range(300)
    ]
    within = "\n".join(lines[:100]).encode()
    assert 2000 < len(within) < 20_000
    imported = api.ok("POST", "/v1/import", content=within, params={"format": "jsonl"})
    assert imported == {"imported": 100}
    beyond = "\n".join(lines).encode()
    assert len(beyond) > 20_000
    response = api.call("POST", "/v1/import", content=beyond, params={"format": "jsonl"})
    assert response.status_code == 413
    assert api.error_of(response)["code"] == "body_too_large"
    assert api.ok("GET", "/v1/stats")["by_kind"]["message"] == 100


def test_unknown_route_and_wrong_method(api: Api) -> None:
    message = api.error("GET", "/v1/nothing-here", 404, "route_not_found")
    assert "/v1/nothing-here" in message
    api.error("GET", "/nothing-here", 404, "route_not_found", role=None)
    response = api.call("PUT", "/v1/health")
    assert response.status_code == 405
    assert api.error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["allow"]
    api.error("DELETE", "/v1/search", 405, "method_not_allowed")


# -- the error shape -------------------------------------------------------------------------


def _flood(api: Api) -> httpx.Response:
    for _ in range(10):
        api.call("GET", "/v1/whoami")
    return api.call("GET", "/v1/whoami")


def _closed(api: Api) -> httpx.Response:
    api.key()
    api.memory.close()
    return api.call("GET", "/v1/whoami")


def _timeout(api: Api) -> httpx.Response:
    return api.call("POST", "/v1/search", json={"query": "x", "user_id": "maya"})


def _conflict(api: Api) -> httpx.Response:
    body = {"messages": [{"content": "one thing", "id": "m1"}], "user_id": "maya"}
    api.ok("POST", "/v1/memories", json=body, status=201)
    body["messages"][0]["content"] = "another thing"  # type: ignore[index]
    return api.call("POST", "/v1/memories", json=body)


def _request(method: str, path: str, **kwargs: Any) -> Any:
    return lambda api: api.call(method, path, **kwargs)


ERRORS: list[tuple[str, Any, int, str, dict[str, Any]]] = [
    ("no key", _request("GET", "/v1/whoami", role=None), 401, "unauthorized", {}),
    ("bad key", _request("GET", "/v1/whoami", role=None, headers={"X-API-Key": "ek_x"}),
     401, "unauthorized", {}),
    ("reader writes", _request("POST", "/v1/memories", role="reader",
                               json={"messages": "x", "user_id": "u"}), 403, "forbidden", {}),
    ("unknown id", _request("GET", "/v1/memories/nope"), 404, "memory_not_found", {}),
    ("unknown hook", _request("DELETE", "/v1/webhooks/nope"), 404, "not_found", {}),
    ("unknown route", _request("GET", "/v1/nope"), 404, "route_not_found", {}),
    ("wrong method", _request("PATCH", "/v1/search"), 405, "method_not_allowed", {}),
    ("not json", _request("POST", "/v1/search", content=b"{nope",
                          headers={"Content-Type": "application/json"}), 400, "invalid_input", {}),
    ("no body", _request("POST", "/v1/search"), 400, "invalid_input", {}),
    ("wrong type", _request("POST", "/v1/memories", json={"messages": 3, "user_id": "u"}),
     400, "invalid_input", {}),
    ("no scope", _request("POST", "/v1/memories", json={"messages": "x"}),
     400, "missing_scope", {}),
    ("empty", _request("POST", "/v1/memories", json={"messages": [{"content": ""}],
                                                     "user_id": "u"}), 400, "empty_content", {}),
    ("role", _request("POST", "/v1/memories", json={"messages": [{"content": "x", "role": "cat"}],
                                                    "user_id": "u"}), 400, "unknown_role", {}),
    ("time", _request("POST", "/v1/memories", json={"messages": [{"content": "x",
                                                                  "timestamp": "soon"}],
                                                    "user_id": "u"}), 400, "invalid_timestamp", {}),
    ("too long", _request("POST", "/v1/memories", json={"messages": "x" * 40, "user_id": "u"}),
     400, "content_too_large", {"max_content_chars": 30}),
    ("filter", _request("POST", "/v1/search", json={"query": "x", "user_id": "u",
                                                    "filters": {"nope": 1}}),
     400, "invalid_filter", {}),
    ("cursor", _request("GET", "/v1/memories", params={"user_id": "u", "cursor": "x"}),
     400, "invalid_cursor", {}),
    ("import", _request("POST", "/v1/import", content=b"garbage\n"), 400, "import_format", {}),
    ("id conflict", _conflict, 409, "id_conflict", {}),
    ("body", _request("POST", "/v1/memories", content=b"x" * 200), 413, "body_too_large",
     {"max_body_bytes": 100}),
    ("rate", _flood, 429, "rate_limited", {"rate_limit": 60}),
    ("store closed", _closed, 503, "store_error", {}),
    ("timeout", _timeout, 504, "timeout", {"request_timeout": 0}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "status", "code", "settings"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_error_shape(
    serve: ServeFactory, make: Any, status: int, code: str, settings: dict[str, Any]
) -> None:
    """Every error leaves as exactly ``{"error": {"code", "message", "status"}}``, ``status``
    equal to the HTTP status, as JSON (and every other error response of this suite is checked
    the same way as it arrives: conftest.assert_error_shape)."""
    api = serve(raise_server_exceptions=False, **settings)
    response = make(api)
    assert response.status_code == status, response.text
    error = api.error_of(response)
    assert error["code"] == code
    assert error["message"] and "\n" not in error["message"]


# -- failures of the embedder and the store ----------------------------------------------------


class DownEmbedder(TestEmbedder):
    """The test embedder's space, with the service down: every call raises."""

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        raise ConnectionError("embedding service unreachable")


def test_embedder_down_add_is_stored_and_search_degrades(serve: ServeFactory) -> None:
    api = serve(embedder=DownEmbedder())
    ids = seed_maya(api)
    assert len(ids) == 4
    page = api.ok("GET", "/v1/memories", params={"user_id": "maya", "kind": "message"})
    assert [r["id"] for r in page["items"]] == ids
    jobs = api.ok("GET", "/v1/jobs")
    assert jobs["pending"] + jobs["failed"] > 0
    hits = search(api, "Porto")
    assert ids[2] in [h["id"] for h in hits]
    for hit in hits:
        assert "degraded" in hit["explain"] and "dense" not in hit["explain"]
        assert "lexical" in hit["explain"]
    assert "Porto" in api.ok("POST", "/v1/context",
                             json={"query": "Porto", "user_id": "maya"})["context"]  # fmt: skip
    report = api.ok("POST", "/v1/process")
    assert report["failed"] > 0 and report["errors"]
    assert api.ok("GET", "/v1/ready") == {"status": "ready"}


STORE_ROUTES = [
    ("GET", "/v1/ready", None),
    ("GET", "/v1/stats", None),
    ("GET", "/v1/jobs", None),
    ("POST", "/v1/process", None),
    ("POST", "/v1/memories", {"messages": "x", "user_id": "maya"}),
    ("GET", "/v1/memories?user_id=maya", None),
    ("GET", "/v1/timeline?user_id=maya", None),
    ("GET", "/v1/memories/some-id", None),
    ("PATCH", "/v1/memories/some-id", {"text": "x"}),
    ("DELETE", "/v1/memories/some-id", None),
    ("GET", "/v1/memories/some-id/history", None),
    ("POST", "/v1/memories/batch-update", {"updates": [{"id": "some-id", "text": "x"}]}),
    ("POST", "/v1/memories/batch-delete", {"ids": ["some-id"]}),
    ("POST", "/v1/search", {"query": "x", "user_id": "maya"}),
    ("POST", "/v1/context", {"query": "x", "user_id": "maya"}),
    ("GET", "/v1/facts?user_id=maya", None),
    ("GET", "/v1/profile?user_id=maya", None),
    ("GET", "/v1/entities?user_id=maya", None),
    ("GET", "/v1/users", None),
    ("GET", "/v1/agents", None),
    ("DELETE", "/v1/users/maya", None),
    ("GET", "/v1/export", None),
    ("GET", "/v1/export?user_id=maya", None),
    ("POST", "/v1/import", None),
    ("GET", "/v1/events", None),
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {"role": "reader"}),
    ("DELETE", "/v1/keys/some-id", None),
    ("GET", "/v1/webhooks", None),
    ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/"}),
    ("DELETE", "/v1/webhooks/some-id", None),
    ("GET", "/v1/webhooks/some-id/deliveries", None),
    ("DELETE", "/v1/tenant?confirm=default", None),
]


@pytest.mark.parametrize(("method", "path", "body"), STORE_ROUTES)
def test_a_closed_store_is_503_on_every_route(
    serve: ServeFactory, method: str, path: str, body: Any
) -> None:
    """Without auth the request reaches the route itself, whose store call fails: 503 in the
    error shape, never a 500, a traceback or a 200 with a cut answer."""
    api = serve(app_options={"auth": False}, raise_server_exceptions=False)
    api.memory.close()
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    if path == "/v1/import":
        kwargs = {"content": b'{"role": "user", "content": "hi", "user_id": "maya"}\n',
                  "params": {"format": "jsonl"}}  # fmt: skip
    response = api.call(method, path, role=None, **kwargs)
    assert response.status_code == 503, response.text
    assert api.error_of(response)["code"] == "store_error"


def test_a_closed_store_keeps_health_but_not_readiness(serve: ServeFactory) -> None:
    api = serve(raise_server_exceptions=False)
    api.key()
    api.memory.close()
    assert api.ok("GET", "/v1/health", role=None)["status"] == "ok"
    api.error("GET", "/v1/ready", 503, "store_error", role=None)
    api.error("POST", "/v1/search", 503, "store_error", json={"query": "x", "user_id": "maya"})
