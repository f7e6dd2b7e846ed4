"""The evaluation harness end to end, on a small LongMemEval-format file (test embedder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engramdb.evals.runner import run_longmemeval


def _question(qid: str, pasted: str) -> dict[str, object]:
    return {
        "question_id": qid,
        "question_type": "single-session-user",
        "question": "Which city did I move to for the new job?",
        "question_date": "2023/05/30 (Tue) 10:00",
        "answer_session_ids": ["s2"],
        "haystack_session_ids": ["s1", "s2"],
        "haystack_dates": ["2023/05/01 (Mon) 09:00", "2023/05/20 (Sat) 18:30"],
        "haystack_sessions": [
            [
                {"role": "user", "content": f"Can you summarise this report? {pasted}"},
                {"role": "assistant", "content": "It is about quarterly sales."},
            ],
            [
                {
                    "role": "user",
                    "content": "I moved to Lisbon for the new job.",
                    "has_answer": True,
                },
                {"role": "assistant", "content": "Congratulations on the move to Lisbon!"},
            ],
        ],
    }


def test_longmemeval_takes_turns_longer_than_the_default_content_limit(tmp_path: Path) -> None:
    # LongMemEval_S holds a 41,855-character pasted document; the default guard is 32,000.
    pasted = "sales figures for the quarter " * 1_500
    path = tmp_path / "lme.json"
    path.write_text(json.dumps([_question("q1", pasted), _question("q2_abs", "x")]))

    result = run_longmemeval(path, embedder="test")

    assert result["questions"] == 1  # the abstention question is skipped
    overall = result["engramdb"]["overall"]
    assert overall["n"] == 1
    assert overall["s_recall_any@5"] == 1.0
    assert result["ingest"]["messages"] == 4


def _update_question() -> dict[str, object]:
    return {
        "question_id": "u1",
        "question_type": "knowledge-update",
        "question": "How many postcards are in my collection?",
        "question_date": "2023/06/30 (Fri) 10:00",
        "answer_session_ids": ["s1", "s3"],
        "haystack_session_ids": ["s1", "s2", "s3"],
        "haystack_dates": [
            "2023/05/01 (Mon) 09:00",
            "2023/05/10 (Wed) 09:00",
            "2023/06/01 (Thu) 09:00",
        ],
        "haystack_sessions": [
            [
                {
                    "role": "user",
                    "content": "I have 20 postcards in my collection.",
                    "has_answer": True,
                }
            ],
            [{"role": "user", "content": "What should I cook for dinner tonight?"}],
            [{"role": "user", "content": "My collection is 45 postcards now.", "has_answer": True}],
        ],
    }


def test_longmemeval_scores_knowledge_updates_and_traces_every_ranking(tmp_path: Path) -> None:
    path = tmp_path / "lme.json"
    path.write_text(json.dumps([_update_question()]))
    records: list[dict[str, Any]] = []

    result = run_longmemeval(path, embedder="test", dense_baselines=True, trace=records.append)

    update = result["engramdb"]["knowledge-update"]
    assert "newest_first" not in result["engramdb"]["overall"]  # only where it applies
    assert set(result["baselines"]) == {"bm25", "dense", "hybrid"}
    assert "newest_first" in result["baselines"]["hybrid"]["knowledge-update"]
    [record] = records
    assert record["answer_sessions"] == {
        "s1": "2023/05/01 (Mon) 09:00",
        "s3": "2023/06/01 (Thu) 09:00",
    }
    ranked = [s for hit in record["engramdb"] for s in hit["sessions"]]
    assert {"s1", "s3"} <= set(ranked)
    first = next(s for s in ranked if s in ("s1", "s3"))
    assert update["newest_first"] == (1.0 if first == "s3" else 0.0)  # s3 is the newer one
    assert {session for session, _ in record["hybrid"]} == {"s1", "s2", "s3"}
