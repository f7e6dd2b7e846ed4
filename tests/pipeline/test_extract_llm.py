"""LLM extraction with the shipped TestLLM: prompts, numbering, dates, mapping, chunks, failures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from engramdb import LLMError
from engramdb.llms.base import Message
from engramdb.llms.test import MESSAGE_LINE, TestLLM
from engramdb.pipeline.extract_llm import (
    MAX_STATEMENT,
    SYSTEM_PROMPT,
    extract_with_llm,
    prompt,
)
from engramdb.pipeline.messages import prepare
from engramdb.records import EntityRef, Keys, Row
from engramdb.types import Scope

SCOPE = Scope(user_id="maya")
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _rows(*messages: dict[str, Any] | str) -> list[Row]:
    given = [{"role": "user", "content": m} if isinstance(m, str) else m for m in messages]
    return prepare(given, scope=SCOPE, session_id="s1", metadata=None, max_chars=100_000, now=NOW)


def maya(row: Row) -> str | None:
    return "Maya" if row.role == "user" else None


def _replying(claims: list[dict[str, Any]]) -> TestLLM:
    return TestLLM(replies=[json.dumps({"claims": claims})])


def _claim(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "subject": "Maya",
        "statement": "Maya likes tea.",
        "attribute": "likes",
        "value": "tea",
        "kind": "preference",
        "messages": [1],
        "valid_from": None,
        "ends": False,
        "entities": [],
    }
    return {**base, **fields}


def _midnight(day: str, offset_hours: int = 0) -> float:
    zone = timezone(timedelta(hours=offset_hours))
    return datetime.fromisoformat(day).replace(tzinfo=zone).timestamp()


def test_a_conversation_becomes_standalone_dated_claims() -> None:
    rows = _rows(
        {
            "role": "user",
            "content": "I moved to Porto yesterday! My sister is called Ana.",
            "timestamp": "2024-05-28T10:00:00+01:00",
        },
        {"role": "assistant", "content": "I love Porto. Congratulations!"},
        "I started at Acme Corp. Do you know it?",
    )
    claims = extract_with_llm(TestLLM(), rows, subject_for=maya)
    by_attribute = {c.attribute: c for c in claims}
    assert set(by_attribute) == {"lives_in", "sister", "works_at"}  # nothing from the assistant
    move = by_attribute["lives_in"]
    assert move.text == "Maya moved to Porto on 27 May 2024."
    assert (move.subject, move.value, move.kind, move.single) == ("Maya", "Porto", "event", True)
    assert move.valid_from == _midnight("2024-05-27", offset_hours=1)
    assert move.source_ids == (rows[0].id,)
    assert move.entities == (EntityRef("Porto", "place", "home"),)
    sister = by_attribute["sister"]
    assert (sister.value, sister.single, sister.valid_from) == ("Ana", False, rows[0].occurred_at)
    assert by_attribute["works_at"].source_ids == (rows[2].id,)


def test_the_prompt_numbers_messages_with_speaker_date_and_weekday() -> None:
    rows = _rows(
        # 23:30 in New York is already the 29th in UTC: the speaker's own date counts.
        {"role": "user", "content": "I live in Boston.", "timestamp": "2024-05-28T23:30:00-05:00"},
        {"role": "assistant", "content": "Nice\ncity.", "name": "Coach"},
    )
    system, user = prompt(rows, maya)
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["content"].splitlines()[1:3] == [
        "[1] 2024-05-28 Tuesday | Maya (user): I live in Boston.",
        "[2] 2024-05-28 Tuesday | Coach, assistant: Nice city.",
    ]
    assert 'Resolve "yesterday"' in SYSTEM_PROMPT and "absolute dates" in SYSTEM_PROMPT


def test_time_words_carry_the_resolved_dates_as_a_hint() -> None:
    rows = _rows(
        {
            "role": "user",
            "content": "I moved yesterday; last week was chaos.",
            "timestamp": "2024-05-28T10:00:00+01:00",
        }
    )
    line = prompt(rows, maya)[1]["content"].splitlines()[1]
    assert line.endswith(
        '[dates: "yesterday" = Monday 2024-05-27; "last week" = 2024-05-20 to 2024-05-26]'
    )
    assert "[dates:" in SYSTEM_PROMPT  # the instructions say what the hint is


def test_an_unknown_offset_shows_the_utc_date() -> None:
    row = Row(
        id="r1", scope=SCOPE, kind="message", session_id=None, role="user", name=None,
        text="I like tea.", occurred_at=_midnight("2024-01-01") - 60, recorded_at=0.0,
        updated_at=0.0, metadata={}, time_mentions=[], keys=Keys(own="I like tea."),
    )  # fmt: skip
    assert "[1] 2023-12-31 Sunday | Maya (user): I like tea." in prompt([row], maya)[1]["content"]


def test_the_test_llm_reads_every_line_of_the_real_prompt() -> None:
    rows = _rows("I like tea.", {"role": "assistant", "content": "ok"}, "I hate rain.")
    lines = list(MESSAGE_LINE.finditer(prompt(rows, maya)[1]["content"]))
    assert [(m["n"], m["role"]) for m in lines] == [("1", "user"), ("2", None), ("3", "user")]


def test_claims_cite_only_user_messages_by_number() -> None:
    rows = _rows("I like tea.", {"role": "assistant", "content": "I like tea too."}, "Yes.")
    llm = _replying(
        [
            _claim(messages=[2]),  # the assistant's own statement: dropped
            _claim(value="green tea", messages=["3", 2, "[1]", 99, 0, True, None, 1]),
            _claim(value="coffee", messages=[]),
            _claim(value="milk", messages=7),
        ]
    )
    claims = extract_with_llm(llm, rows, subject_for=maya)
    assert [(c.value, c.source_ids) for c in claims] == [("green tea", (rows[2].id, rows[0].id))]


def test_model_answers_are_normalised() -> None:
    rows = _rows({"role": "user", "content": "…", "timestamp": "2024-05-28T10:00:00+02:00"})
    long = "Maya " + "really " * 100 + "likes tea."
    llm = _replying(
        [
            _claim(subject="I", statement="The user lives in Lisbon.", attribute="Lives In",
                   value="Lisbon", kind="opinion", valid_from="2024-05-27T10:00"),
            _claim(subject="Ana", statement="Ana is a nurse.", attribute="job_title",
                   value="", kind="fact", valid_from="2024-02-30",
                   entities=[{"name": "Ana", "type": "human", "relation": ""}, {"name": ""}, 3]),
            _claim(statement=long, value=4, ends=1),
            _claim(statement="  ", value="nothing to say"),
        ]
    )  # fmt: skip
    home, job, tea = extract_with_llm(llm, rows, subject_for=maya)
    assert (home.subject, home.attribute, home.kind) == ("Maya", "lives_in", "fact")
    assert home.single
    assert home.text == "Maya lives in Lisbon."
    assert home.valid_from == _midnight("2024-05-27", offset_hours=2)
    assert (job.subject, job.value) == ("Ana", "Ana is a nurse.")
    assert job.valid_from == rows[0].occurred_at
    assert job.entities == (EntityRef("Ana", "thing", None),)
    assert len(tea.text) == MAX_STATEMENT and tea.text.endswith("…")
    assert (tea.value, tea.ends) == ("4", False)  # only a JSON true ends a value


def test_identical_claims_become_one_citing_all_sources() -> None:
    rows = _rows("I like tea.", "I like tea!")
    claims = extract_with_llm(TestLLM(), rows, subject_for=maya)
    assert len(claims) == 1
    assert claims[0].source_ids == (rows[0].id, rows[1].id)


def test_ending_statements_are_marked() -> None:
    rows = _rows("I no longer live in Lisbon.")
    (claim,) = extract_with_llm(TestLLM(), rows, subject_for=maya)
    assert (claim.attribute, claim.value, claim.ends) == ("lives_in", "Lisbon", True)


def test_a_large_batch_is_cut_into_calls_that_each_fit() -> None:
    rows = _rows(*[f"I like thing number {i} " + "very much " * 40 for i in range(40)])
    llm = TestLLM()
    claims = extract_with_llm(llm, rows, subject_for=maya, max_chars=6000)
    assert len(llm.prompts) > 2
    blocks = [p[-1]["content"] for p in llm.prompts]
    for block in blocks:
        lines = [m.group() for m in MESSAGE_LINE.finditer(block)]
        assert lines[0].startswith("[1] ")  # numbering restarts per call
        assert sum(len(line) + 1 for line in lines) <= 6000
    assert len(claims) == 40
    assert [c.source_ids for c in claims] == [(row.id,) for row in rows]
    assert all(c.value.startswith(f"thing number {i} ") for i, c in enumerate(claims))


def test_a_message_longer_than_the_limit_goes_alone() -> None:
    rows = _rows("I like tea.", "I like " + "x" * 7000, "I like rain.")
    llm = TestLLM()
    assert len(extract_with_llm(llm, rows, subject_for=maya, max_chars=6000)) == 3
    assert len(llm.prompts) == 3


def test_context_only_batches_cost_no_call() -> None:
    rows = _rows({"role": "assistant", "content": "I live in Paris."})
    llm = TestLLM()
    assert extract_with_llm(llm, rows, subject_for=maya) == []
    assert llm.prompts == []


def test_nothing_found_is_an_empty_list() -> None:
    llm = TestLLM()
    assert extract_with_llm(llm, _rows("Hello there!"), subject_for=maya) == []
    assert len(llm.prompts) == 1


def test_a_bad_answer_is_repaired_by_asking_again() -> None:
    llm = TestLLM(replies=["Maya likes tea, I believe.", json.dumps({"claims": [_claim()]})])
    (claim,) = extract_with_llm(llm, _rows("I like tea."), subject_for=maya)
    assert claim.value == "tea"
    assert "could not be used" in llm.prompts[1][-1]["content"]


def test_garbled_output_raises_instead_of_returning_nothing() -> None:
    llm = TestLLM(garble=True)
    with pytest.raises(LLMError, match="no usable JSON") as caught:
        extract_with_llm(llm, _rows("I like tea."), subject_for=maya)
    assert caught.value.retryable
    assert len(llm.prompts) == 3


def test_a_failing_model_raises_and_a_later_attempt_succeeds() -> None:
    llm = TestLLM(fail_times=1)
    rows = _rows("I like tea.")
    with pytest.raises(LLMError, match="simulated failure"):
        extract_with_llm(llm, rows, subject_for=maya)
    assert [c.value for c in extract_with_llm(llm, rows, subject_for=maya)] == ["tea"]


def test_a_handler_sees_the_whole_prompt() -> None:
    seen: list[Sequence[Message]] = []

    def handler(messages: list[Message]) -> str:
        seen.append(messages)
        return '[{"subject": "Maya", "statement": "Maya likes tea.", "messages": [1]}]'

    (claim,) = extract_with_llm(TestLLM(handler), _rows("I like tea."), subject_for=maya)
    # A bare list is wrapped; missing fields take their defaults.
    assert (claim.attribute, claim.value, claim.kind) == ("note", "Maya likes tea.", "fact")
    assert seen[0][0]["role"] == "system"
