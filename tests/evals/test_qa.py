"""The QA harness end to end: real stores (test embedder), a reader and a judge that are
deterministic handler functions, on two small invented files, one per format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engramdb.cli import main
from engramdb.evals.qa import (
    LME_JUDGE,
    LOCOMO_JUDGE,
    run_locomo_qa,
    run_longmemeval_qa,
    template_hash,
)
from engramdb.llms.base import Message
from engramdb.llms.test import TestLLM

_STOP = {"what", "which", "the", "does", "did", "where", "when", "how", "who", "and", "for", "now"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if len(w) > 2 and w not in _STOP}


def read_closest_line(messages: list[Message]) -> str:
    """A reader that answers with the context line sharing most words with the question, or
    says it does not know when none shares any."""
    prompt = messages[-1]["content"]
    context = prompt.split("Memories:\n", 1)[1].split("\n\nThe question is asked on", 1)[0]
    question = _words(prompt.rsplit("Question: ", 1)[1])
    lines = [line for line in context.splitlines() if line.startswith("- ")]
    best = max(lines, key=lambda line: len(_words(line) & question), default="")
    return best if _words(best) & question else "I don't know."


def judge_by_inclusion(messages: list[Message]) -> str:
    """A judge that passes an answer containing the gold one, and an abstention that says it
    does not know; in each protocol's reply format."""
    prompt = messages[-1]["content"]
    answer = re.search(r"(?:Assistant's answer|Answer to grade): (.*)", prompt)
    said = answer.group(1).lower() if answer else ""
    if "Gold answer:" in prompt:
        gold = re.search(r"Gold answer: (.*)", prompt)
        right = gold is not None and gold.group(1).lower() in said
        return json.dumps({"reason": "compared", "label": "CORRECT" if right else "WRONG"})
    if "Why it cannot be answered:" in prompt:
        return "yes" if "don't know" in said else "no"
    gold = re.search(r"Correct answer: (.*)", prompt)
    return "Yes." if gold is not None and gold.group(1).lower() in said else "No."


def _turn(speaker: str, dia_id: str, text: str) -> dict[str, str]:
    return {"speaker": speaker, "dia_id": dia_id, "text": text}


LOCOMO = [
    {
        "sample_id": "conv-lena",
        "conversation": {
            "speaker_a": "Lena",
            "speaker_b": "Tomás",
            "session_1_date_time": "3:10 pm on 4 March, 2023",
            "session_1": [
                _turn("Lena", "D1:1", "I just adopted a grey cat called Pixel."),
                _turn("Tomás", "D1:2", "Pixel is a great name! I started learning the cello."),
                _turn("Lena", "D1:3", "I work as a nurse at Saint Mary hospital."),
            ],
            "session_2_date_time": "9:00 am on 20 April, 2023",
            "session_2": [
                _turn("Lena", "D2:1", "I ran the Lisbon half marathon on Sunday."),
                _turn("Tomás", "D2:2", "Well done! My cello teacher says I am improving."),
            ],
        },
        "qa": [
            {"question": "What is the name of Lena's cat?", "answer": "Pixel",
             "evidence": ["D1:1"], "category": 1},
            {"question": "Which instrument is Tomás learning with a teacher?", "answer": "cello",
             "evidence": ["D1:2", "D2:2"], "category": 4},
            {"question": "Which hospital does Lena work at as a nurse?",
             "answer": "Saint Mary hospital", "evidence": ["D1:3"], "category": 1},
            {"question": "What did Lena's dog eat?", "adversarial_answer": "nothing said",
             "evidence": [], "category": 5},
        ],
    },
    {
        "sample_id": "conv-omar",
        "conversation": {
            "speaker_a": "Omar",
            "speaker_b": "Kai",
            "session_1_date_time": "11:00 am on 2 June, 2023",
            "session_1": [
                _turn("Omar", "D1:1", "We are planning a trip to Iceland in August."),
                _turn("Kai", "D1:2", "I have been baking sourdough bread every weekend."),
            ],
            "session_2_date_time": "6:30 pm on 15 July, 2023",
            "session_2": [
                _turn("Omar", "D2:1", "My daughter Noor turned five today."),
                _turn("Kai", "D2:2", "Happy birthday to Noor!"),
            ],
        },
        "qa": [
            {"question": "Where is Omar planning a trip in August?", "answer": "Iceland",
             "evidence": ["D1:1"], "category": 4},
            {"question": "What bread has Kai been baking?", "answer": "sourdough",
             "evidence": ["D1:2"], "category": 4},
            {"question": "When did Omar's daughter Noor turn five?", "answer": "15 July 2023",
             "evidence": ["D2:1"], "category": 2},
            {"question": "What is Omar's favourite colour?", "answer": "green",
             "evidence": [], "category": 3},
        ],
    },
]  # fmt: skip

_MOVE = [
    {"role": "user", "content": "I moved to Rotterdam for my new job at a design studio.",
     "has_answer": True},
    {"role": "assistant", "content": "Congratulations on the new job!"},
]  # fmt: skip
_SECOND_MOVE = [
    {"role": "user", "content": "I now live in Utrecht: the commute to Rotterdam was too long.",
     "has_answer": True},
    {"role": "assistant", "content": "Utrecht is a lovely city."},
]  # fmt: skip


def _lme(qid: str, qtype: str, question: str, answer: str, sessions: list[str]) -> dict[str, Any]:
    return {
        "question_id": qid,
        "question_type": qtype,
        "question": question,
        "answer": answer,
        "question_date": "2023/05/02 (Tue) 10:00",
        "answer_session_ids": sessions,
        "haystack_session_ids": ["lme-s1", "lme-s2"],
        "haystack_dates": ["2023/03/01 (Wed) 09:00", "2023/04/10 (Mon) 20:15"],
        "haystack_sessions": [_MOVE, _SECOND_MOVE],
    }


LONGMEMEVAL = [
    _lme("q-job", "single-session-user", "What kind of company did I join for my new job?",
         "design studio", ["lme-s1"]),
    _lme("q-city", "knowledge-update", "Which city do I live in now?", "Utrecht", ["lme-s2"]),
    _lme("q-days", "temporal-reasoning",
         "How many days passed between my move to Rotterdam and my move to Utrecht?", "40 days",
         ["lme-s1", "lme-s2"]),
    _lme("q-four_abs", "single-session-user", "What is my sister's favourite film?",
         "You never mentioned your sister's favourite film.", ["lme-s1"]),
]  # fmt: skip


@pytest.fixture
def locomo_file(tmp_path: Path) -> Path:
    path = tmp_path / "locomo_tiny.json"
    path.write_text(json.dumps(LOCOMO), encoding="utf-8")
    return path


@pytest.fixture
def longmemeval_file(tmp_path: Path) -> Path:
    path = tmp_path / "longmemeval_tiny.json"
    path.write_text(json.dumps(LONGMEMEVAL), encoding="utf-8")
    return path


def _models() -> tuple[TestLLM, TestLLM]:
    return TestLLM(read_closest_line, name="reader"), TestLLM(judge_by_inclusion, name="judge")


def test_locomo_qa_grades_answers_beside_retrieval_recall(locomo_file: Path) -> None:
    reader, judge = _models()
    steps: list[tuple[int, int]] = []

    result = run_locomo_qa(
        locomo_file,
        reader=reader,
        judge=judge,
        embedder="test",
        progress=lambda done, total: steps.append((done, total)),
    )

    verdicts = {r["question"]: r["verdict"] for r in result["per_question"]}
    assert len(verdicts) == 7  # the adversarial (category 5) question is not graded
    assert verdicts["What is the name of Lena's cat?"] is True
    assert verdicts["Where is Omar planning a trip in August?"] is True
    assert verdicts["When did Omar's daughter Noor turn five?"] is True  # the dated line
    assert verdicts["What is Omar's favourite colour?"] is False
    overall = result["accuracy"]["overall (1-4)"]
    assert overall["n"] == 7
    assert overall["accuracy"] == round(sum(verdicts.values()) / 7, 4)
    assert result["accuracy"]["category 3"] == {"accuracy": 0.0, "n": 1}
    assert result["summary"]["accuracy"] == overall
    # Recall comes from the same stores, for the questions with evidence.
    assert result["retrieval"]["overall (1-4)"]["n"] == 6
    assert result["retrieval"]["category 1"]["recall@5"] == 1.0
    assert steps[-1] == (7, 7)
    assert (result["reader"], result["judge"], result["conversations"]) == ("reader", "judge", 2)


def test_every_call_is_recorded_with_its_tokens_and_prompt(locomo_file: Path) -> None:
    reader, judge = _models()

    result = run_locomo_qa(locomo_file, reader=reader, judge=judge, embedder="test", limit=3)

    assert result["questions"] == len(result["per_question"]) == 3
    assert result["conversations"] == 1  # the limit was reached inside the first one
    first = result["per_question"][0]
    # TestLLM counts words: the figures are those of the prompt it was sent.
    sent = reader.prompts[0]
    assert first["reader"]["prompt_tokens"] == sum(len(m["content"].split()) for m in sent)
    assert first["reader"]["completion_tokens"] == len(first["answer"].split())
    assert first["reader"]["calls"] == first["judge"]["calls"] == 1
    assert first["judge_prompt"] == template_hash(LOCOMO_JUDGE)
    assert result["prompts"]["judge"][first["judge_prompt"]]["template"] == LOCOMO_JUDGE
    assert json.loads(first["judge_reply"])["label"] in ("CORRECT", "WRONG")
    assert result["usage"]["reader"]["calls"] == 3
    assert result["usage"]["judge"]["prompt_tokens"] == sum(
        r["judge"]["prompt_tokens"] for r in result["per_question"]
    )
    assert result["latency_ms"]["reader"]["n"] == 3
    assert first["context_chars"] > 0 and first["error"] is None


def test_longmemeval_qa_uses_each_question_types_judge(longmemeval_file: Path) -> None:
    reader, judge = _models()

    result = run_longmemeval_qa(longmemeval_file, reader=reader, judge=judge, embedder="test")

    by_id = {r["id"]: r for r in result["per_question"]}
    assert by_id["q-city"]["judge_prompt"] == template_hash(LME_JUDGE["knowledge-update"])
    assert by_id["q-days"]["judge_prompt"] == template_hash(LME_JUDGE["temporal-reasoning"])
    assert by_id["q-job"]["judge_prompt"] == template_hash(LME_JUDGE["default"])
    assert by_id["q-four_abs"]["judge_prompt"] == template_hash(LME_JUDGE["abstention"])
    assert "off by one" in judge.prompts[2][-1]["content"]
    assert by_id["q-four_abs"]["answer"] == "I don't know."
    assert by_id["q-four_abs"]["verdict"] is True  # abstaining is the right answer
    assert by_id["q-city"]["verdict"] is True
    assert by_id["q-days"]["verdict"] is False  # no line says "40 days"
    assert result["accuracy"]["abstention"] == {"accuracy": 1.0, "n": 1}
    assert result["accuracy"]["overall"]["n"] == 4
    # Recall only for the answerable questions, as the retrieval runner computes it.
    assert result["retrieval"]["overall"]["n"] == 3
    assert "s_recall_any@5" in result["summary"]["retrieval"]
    assert "2 May 2023" in reader.prompts[0][-1]["content"]  # the question's date


def test_a_failing_model_costs_its_question_not_the_run(longmemeval_file: Path) -> None:
    reader = TestLLM(read_closest_line, fail_times=1, name="reader")

    result = run_longmemeval_qa(
        longmemeval_file, reader=reader, judge=TestLLM(judge_by_inclusion), embedder="test"
    )

    first = result["per_question"][0]
    assert "simulated failure" in first["error"]
    assert first["verdict"] is None
    assert first["reader"]["failures"] == 1
    assert result["errors"] == 1
    assert result["accuracy"]["overall"]["n"] == 4  # counted, as wrong


def test_a_judge_reply_without_a_verdict_is_unjudged(longmemeval_file: Path) -> None:
    reader = TestLLM(read_closest_line)

    result = run_longmemeval_qa(
        longmemeval_file, reader=reader, judge=TestLLM(replies=["maybe"] * 4), embedder="test"
    )

    assert result["unjudged"] == 4
    assert result["accuracy"]["overall"]["accuracy"] == 0.0


def test_engram_eval_with_a_reader_and_a_judge(longmemeval_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "qa.json"
    result = CliRunner().invoke(
        main,
        ["--embedder", "test", "eval", "longmemeval", str(longmemeval_file),
         "--reader", "test", "--judge", "test", "--limit", "2", "--context-tokens", "300",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["context_tokens"] == 300
    assert [q["id"] for q in written["per_question"]] == ["q-job", "q-city"]
    assert written["unjudged"] == 2  # the test model answers "OK.", neither yes nor no
    assert "accuracy" in json.loads(result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reader", "test"], "--reader and --judge together"),
        (["--context-tokens", "100"], "needs --reader"),
    ],
)
def test_engram_eval_refuses_half_a_qa_setup(
    longmemeval_file: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        main, ["--embedder", "test", "eval", "longmemeval", str(longmemeval_file), *args]
    )
    assert result.exit_code == 2
    assert message in result.output


def test_engram_eval_names_an_unknown_model(longmemeval_file: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--embedder", "test", "eval", "longmemeval", str(longmemeval_file),
         "--reader", "nope", "--judge", "test"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "unknown llm 'nope'" in result.output
    assert len(result.output.strip().splitlines()) == 1
