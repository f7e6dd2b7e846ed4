"""Importers on small hand-written files in each format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from engramdb import ImportFormatError, Memory
from engramdb.importers import detect_format, read

LOCOMO = [
    {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a puppy yesterday!"},
                {
                    "speaker": "Ben",
                    "dia_id": "D1:2",
                    "text": "Cute! Photo?",
                    "blip_caption": "a small brown dog",
                },
            ],
            "session_2_date_time": "9:00 am on 20 May, 2023",
            "session_2": [{"speaker": "Ben", "dia_id": "D2:1", "text": "How is the puppy?"}],
        },
        "qa": [
            {
                "question": "When did Ana adopt a puppy?",
                "answer": "7 May 2023",
                "evidence": ["D1:1"],
                "category": 2,
            }
        ],
    }
]

LONGMEMEVAL = [
    {
        "question_id": "q1",
        "question_type": "single-session-user",
        "question": "What colour is my bike?",
        "question_date": "2023/06/01 (Thu) 10:00",
        "answer": "red",
        "answer_session_ids": ["s2"],
        "haystack_session_ids": ["s1", "s2"],
        "haystack_dates": ["2023/05/01 (Mon) 09:00", "2023/05/20 (Sat) 02:21"],
        "haystack_sessions": [
            [
                {"role": "user", "content": "Tell me a joke"},
                {"role": "assistant", "content": "No."},
            ],
            [
                {"role": "user", "content": "I bought a red bike", "has_answer": True},
                {"role": "assistant", "content": ""},
            ],
        ],
    }
]

CHATGPT = [
    {
        "title": "Trip",
        "create_time": 1683554160.0,
        "current_node": "c",
        "mapping": {
            "root": {"id": "root", "message": None, "parent": None, "children": ["a"]},
            "a": {
                "id": "a",
                "parent": "root",
                "children": ["b_old", "b"],
                "message": {
                    "author": {"role": "user"},
                    "create_time": 1683554160.0,
                    "content": {"parts": ["Plan a trip to Kyoto"]},
                },
            },
            "b_old": {
                "id": "b_old",
                "parent": "a",
                "children": [],
                "message": {
                    "author": {"role": "assistant"},
                    "create_time": 1683554170.0,
                    "content": {"parts": ["An abandoned answer"]},
                },
            },
            "b": {
                "id": "b",
                "parent": "a",
                "children": ["c"],
                "message": {
                    "author": {"role": "assistant"},
                    "create_time": 1683554180.0,
                    "content": {"parts": ["Day 1: Fushimi Inari"]},
                },
            },
            "c": {
                "id": "c",
                "parent": "b",
                "children": [],
                "message": {"author": {"role": "system"}, "content": {"parts": ["hidden"]}},
            },
        },
    }
]


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(data, fh)
    else:
        path.write_text(json.dumps(data))
    return path


def test_locomo(tmp_path: Path) -> None:
    path = _write(tmp_path, "locomo.json", LOCOMO)
    assert detect_format(path) == "locomo"
    sessions = list(read(path, "locomo"))
    assert [s.session_id for s in sessions] == ["session_1", "session_2"]
    first = sessions[0].messages
    assert sessions[0].user_id == "conv-x"
    assert first[0]["role"] == "user" and first[1]["role"] == "assistant"
    assert first[1]["content"].endswith("[shares a photo: a small brown dog]")
    assert first[1]["timestamp"] > first[0]["timestamp"]
    assert first[0]["metadata"] == {"dia_id": "D1:1"}


def test_longmemeval_gz_drops_empty_turns(tmp_path: Path) -> None:
    path = _write(tmp_path, "lme.json.gz", LONGMEMEVAL)
    assert detect_format(path) == "longmemeval"
    sessions = list(read(path, "longmemeval"))
    assert [len(s.messages) for s in sessions] == [2, 1]
    assert sessions[1].messages[0]["metadata"] == {"turn": "s2:0", "has_answer": True}


def test_chatgpt_export_follows_the_active_branch(tmp_path: Path) -> None:
    path = _write(tmp_path, "conversations.json", CHATGPT)
    assert detect_format(path) == "chatgpt"
    (conv,) = list(read(path, "chatgpt"))
    assert [m["content"] for m in conv.messages] == ["Plan a trip to Kyoto", "Day 1: Fushimi Inari"]
    assert conv.messages[0]["timestamp"].startswith("2023-05-08T13:56")


def test_chatgpt_import_needs_a_user(tmp_path: Path) -> None:
    path = _write(tmp_path, "conversations.json", CHATGPT)
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        with pytest.raises(Exception, match="needs a scope"):
            mem.import_file(path)
        assert mem.import_file(path, user_id="me") == 2
        assert mem.import_file(path, user_id="me") == 0  # idempotent


def test_jsonl_groups_by_scope_and_session(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"role": "user", "content": "a", "user_id": "u", "session_id": "1"},
                {"role": "assistant", "content": "b", "user_id": "u", "session_id": "1"},
                {"role": "user", "content": "c", "user_id": "v"},
            ]
        )
        + "\n"
    )
    assert detect_format(path) == "jsonl"
    convs = list(read(path, "jsonl"))
    assert [(c.user_id, c.session_id, len(c.messages)) for c in convs] == [
        ("u", "1", 2),
        ("v", None, 1),
    ]


def test_import_file_loads_locomo_with_dates(tmp_path: Path) -> None:
    path = _write(tmp_path, "locomo.json", LOCOMO)
    with Memory(tmp_path / "m.db", embedder="test") as mem:
        assert mem.import_file(path) == 3
        hits = mem.search("puppy adopted", user_id="conv-x")
        turn = next(h for h in hits if h.kind == "message")
        assert turn.sources[0].metadata["dia_id"] == "D1:1"
        assert turn.time_mentions[0].label() == "7 May 2023"
        # The turn's fact is dated by the conversation, not by the day of the import.
        facts = mem.facts(user_id="conv-x").items
        assert facts and all(f.valid_from.year == 2023 for f in facts)


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        ("not json at all", "auto", "not JSON"),
        ('[{"something": 1}]', "auto", "unknown kind"),
        ('{"role": "user"}\n', "jsonl", "missing field 'content'"),
        ('{"role": "user", "content": "x"}\n[1]\n', "jsonl", "JSON object per line"),
        ('[{"conversation": {}, "qa": []}]', "locomo", "missing field 'speaker_a'"),
    ],
)
def test_malformed_files_say_where(tmp_path: Path, content: str, fmt: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with (
        pytest.raises(ImportFormatError, match=message),
        Memory(tmp_path / "m.db", embedder="test") as mem,
    ):
        mem.import_file(path, format=fmt, user_id="u")
