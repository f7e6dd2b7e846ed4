"""The current-truth benchmark: its histories are deterministic and shaped as promised, and its
scorer counts right on a hand-made case (the test embedder, a real store)."""

from __future__ import annotations

import sys
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import current_truth as bench
import truth_sets as ts

from engramdb import Memory
from engramdb.embedders import resolve_embedder


@pytest.fixture(scope="module")
def histories() -> list[ts.History]:
    return ts.generate(40, seed=7)


def test_same_seed_same_histories(histories: list[ts.History]) -> None:
    assert ts.generate(40, seed=7) == histories
    assert ts.generate(40, seed=8) != histories


def test_at_least_forty_histories_over_months(histories: list[ts.History]) -> None:
    assert len(histories) >= 40
    assert len({h.user_id for h in histories}) == len(histories)
    assert len({h.attribute for h in histories}) >= 8
    for h in histories:
        assert 3 <= len(h.sessions) <= 6
        assert 2 <= len(h.values) <= 3 and len(set(h.values)) == len(h.values)
        days = [s.day for s in h.sessions]
        assert all((b - a).days >= 20 for a, b in pairwise(days))


def test_turns_alternate_with_timestamps(histories: list[ts.History]) -> None:
    for h in histories:
        for s in h.sessions:
            roles = [m["role"] for m in s.messages]
            assert roles == ["user", "assistant"] * (len(roles) // 2)
            stamps = [datetime.fromisoformat(m["timestamp"]) for m in s.messages]
            assert stamps == sorted(stamps) and all(t.tzinfo for t in stamps)
            assert all(m.get("name") == h.name for m in s.messages if m["role"] == "user")


def _count(h: ts.History, value: str) -> int:
    return sum(ts.mentions(m["content"], value) for s in h.sessions for m in s.messages)


def test_old_values_outnumber_the_current_one(histories: list[ts.History]) -> None:
    for h in histories:
        assert _count(h, h.values[-1]) >= 1
        assert all(_count(h, old) > _count(h, h.values[-1]) for old in h.values[:-1])


def test_questions_ask_now_and_then(histories: list[ts.History]) -> None:
    for h in histories:
        now = [q for q in h.questions if q.kind == "current"]
        then = [q for q in h.questions if q.kind == "past"]
        assert now and all(q.expected == h.values[-1] and q.as_of is None for q in now)
        assert len(then) == len(h.values) - 1
        for q, value in zip(then, h.values, strict=False):
            assert q.expected == value and value not in q.wrong
            # as_of falls after the value was first said, before the next session
            said = [
                s.day
                for s in h.sessions
                if any(ts.mentions(m["content"], value) for m in s.messages)
            ]
            assert q.as_of is not None and said[0] < datetime.fromisoformat(q.as_of).date()


def test_many_phrasings_per_attribute() -> None:
    for attr in ts.ATTRIBUTES:
        assert len(set(attr.initial)) >= 6 and len(set(attr.change)) >= 6, attr.key
        assert len(attr.values) >= 6 and len(attr.ask_now) >= 3


def test_small_talk_names_no_value() -> None:
    values = [v for a in ts.ATTRIBUTES for v in a.values]
    for line in ts.SMALL_TALK + ts.REPLIES:
        assert not any(ts.mentions(line, v) for v in values), line


def test_mentions_match_whole_words_only() -> None:
    assert ts.mentions("we moved to porto!", "Porto")
    assert not ts.mentions("Portobello road", "Porto")
    assert ts.first_at("Lisbon then Porto", "Porto") == 12


def test_first_mention_takes_the_first_hit_naming_a_value() -> None:
    texts = ["small talk", "I miss Lisbon", "I live in Porto now"]
    assert not bench.first_mention(texts, "Porto", ["Lisbon"])
    assert bench.first_mention(texts[2:], "Porto", ["Lisbon"])
    assert bench.first_mention(["I left Lisbon for Porto"], "Porto", ["Lisbon"])
    assert not bench.first_mention(["small talk"], "Porto", ["Lisbon"])
    assert bench.named_first("Porto, once Lisbon", "Porto", ["Lisbon"])
    assert not bench.named_first("Lisbon, now Porto", "Porto", ["Lisbon"])
    assert bench.states_only("lives in Porto", "Porto", ["Lisbon"])
    assert not bench.states_only("Porto, not Lisbon", "Porto", ["Lisbon"])


def _tiny() -> ts.History:
    def msg(role: str, content: str, stamp: str) -> dict[str, str]:
        extra = {"name": "Maya"} if role == "user" else {}
        return {"role": role, "content": content, "timestamp": stamp, **extra}

    first = ts.Session(
        "maya-s1",
        datetime(2024, 1, 10).date(),
        (
            msg("user", "I live in Lisbon.", "2024-01-10T10:00:00+00:00"),
            msg("assistant", "Lovely.", "2024-01-10T10:00:30+00:00"),
        ),
    )
    second = ts.Session(
        "maya-s2",
        datetime(2024, 5, 29).date(),
        (
            msg("user", "I moved to Porto.", "2024-05-29T10:00:00+00:00"),
            msg("assistant", "Congrats.", "2024-05-29T10:00:30+00:00"),
        ),
    )
    return ts.History(
        name="Maya",
        user_id="maya",
        attribute="city",
        values=("Lisbon", "Porto"),
        sessions=(first, second),
        questions=(
            ts.Question("current", "Where does Maya live now?", "Porto", ("Lisbon",)),
            ts.Question(
                "past", "Where does Maya live?", "Lisbon", ("Porto",), "2024-02-01T00:00:00+00:00"
            ),
        ),
    )


def test_scores_a_hand_made_history(tmp_path: Path) -> None:
    history = _tiny()
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        for session in history.sessions:
            mem.add(list(session.messages), user_id="maya", session_id=session.session_id)
        now, then = (bench.score(mem, history, q) for q in history.questions)
        hits = [h.text for h in mem.search("Where does Maya live now?", user_id="maya")]
    named = [t for t in hits if "Porto" in t or "Lisbon" in t]
    assert now["first_mention"] == ("Porto" in named[0] and "Lisbon" not in named[0])
    assert now["in_top3"] == any("Porto" in t for t in hits[:3])
    assert now["context_present"]
    # As of February only the Lisbon turn (and its fact) exists.
    assert then["first_mention"] and then["in_top3"] and then["context_first"]
    assert "Lisbon" in then["top_hit"] or then["top_hit"] == "Lovely."
    assert not then["decider_names_both"]
    summary = bench.summary([now, then])
    assert summary["current"]["n"] == 1 and summary["past"]["first_mention"] == 1.0
    assert set(summary["per_attribute"]) == {"city"}


def test_runs_a_history_in_a_fresh_store(tmp_path: Path) -> None:
    rows = bench.run_history(_tiny(), resolve_embedder("test"), tmp_path)
    assert [r["kind"] for r in rows] == ["current", "past"]
    assert (tmp_path / "maya.db").exists()


def test_profile_when_memory_has_one(tmp_path: Path) -> None:
    class Profiled(Memory):
        def profile(self, user_id: str) -> Any:
            return "Maya lives in Porto."

    with Profiled(tmp_path / "m.db", embedder="test") as mem:
        assert bench._profile(mem, "maya", "Porto", ["Lisbon"]) is True
        assert bench._profile(mem, "maya", "Lisbon", ["Porto"]) is False
