"""The `engram` command through click's runner, on a real store file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engramdb.cli import main


@pytest.fixture
def engram(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    db = str(tmp_path / "cli.db")

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(main, ["--db", db, "--embedder", "test", *args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_add_search_show_history_delete(engram) -> None:  # type: ignore[no-untyped-def]
    ident = engram(
        "add",
        "--user",
        "ana",
        "--time",
        "2024-03-02T10:00:00",
        "I signed up for the half marathon yesterday",
    ).output.strip()
    found = json.loads(engram("search", "--user", "ana", "--json", "half marathon").output)
    assert found[0]["id"] == ident
    assert found[0]["occurred_at"].startswith("2024-03-02")
    shown = json.loads(engram("show", ident).output)
    assert shown["text"] == "I signed up for the half marathon yesterday"
    assert "1 March 2024" in engram("context", "--user", "ana", "marathon").output
    assert json.loads(engram("history", ident).output)[0]["event"] == "create"
    engram("delete", ident)
    missing = engram("show", ident, ok=False)
    assert missing.exit_code == 1
    assert "no memory with id" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


def test_errors_are_one_line_and_exit_1(engram) -> None:  # type: ignore[no-untyped-def]
    result = engram("add", "some text", ok=False)
    assert result.exit_code == 1
    assert "needs a scope" in result.output
    result = engram("add", "--user", "u", "--time", "not a date", "x", ok=False)
    assert result.exit_code == 1
    assert "is not a date" in result.output


def test_list_pages_with_a_cursor(engram) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        engram("add", "--user", "u", f"note {i}")
    first = json.loads(engram("list", "--user", "u", "--limit", "3", "--json").output)
    assert len(first["items"]) == 3
    rest = json.loads(
        engram(
            "list", "--user", "u", "--limit", "3", "--cursor", first["next_cursor"], "--json"
        ).output
    )
    assert [i["text"] for i in rest["items"]] == ["note 3", "note 4"]
    assert rest["next_cursor"] is None


def test_export_then_import_into_an_empty_store(engram, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engram("add", "--user", "u", "--session", "s", "I keep bees on the roof")
    out = tmp_path / "backup.jsonl"
    engram("export", str(out))
    runner = CliRunner()
    other = str(tmp_path / "other.db")
    result = runner.invoke(main, ["--db", other, "--embedder", "test", "import", str(out)])
    assert result.exit_code == 0, result.output
    assert "imported 1" in result.output
    found = runner.invoke(
        main, ["--db", other, "--embedder", "test", "search", "--user", "u", "--json", "bees"]
    )
    assert json.loads(found.output)[0]["text"] == "I keep bees on the roof"


def test_import_of_a_broken_file_says_where(engram, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"role": "user", "content": "fine", "user_id": "u"}\n{not json\n')
    result = engram("import", str(bad), "--format", "jsonl", ok=False)
    assert result.exit_code == 1
    assert "bad.jsonl" in result.output


def test_demo_answers_with_dates_and_provenance(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--embedder", "test", "demo", "--db", str(tmp_path / "demo.db")]
    )
    assert result.exit_code == 0, result.output
    assert "Q: Where does Maya live now?" in result.output
    assert "2024" in result.output
    assert "←" in result.output  # provenance of each answer line
    again = CliRunner().invoke(
        main, ["--embedder", "test", "demo", "--db", str(tmp_path / "demo.db")]
    )
    assert again.exit_code == 0


def test_stats(engram) -> None:  # type: ignore[no-untyped-def]
    engram("add", "--user", "u", "hello")
    stats = json.loads(engram("stats").output)
    assert stats["memories"] == 1
    assert stats["embedder"].startswith("test")
