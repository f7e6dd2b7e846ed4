"""The evaluation harness end to end, on a small LongMemEval-format file (test embedder)."""

from __future__ import annotations

import json
from pathlib import Path

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
