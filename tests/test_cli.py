"""The `engram` command through click's runner, on a real store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from engramdb.cli import main


@pytest.fixture
def engram(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    db = str(tmp_path / "cli.db")

    def run(*args: str, ok: bool = True, env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(main, ["--db", db, "--embedder", "test", *args], env=env)
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
    turn = next(h for h in found if h["kind"] == "message")
    assert turn["id"] == ident
    assert turn["occurred_at"].startswith("2024-03-02")
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


def _column(output: str, index: int) -> list[str]:
    """The non-empty cells of one column of a rich table (a row may wrap over lines)."""
    rows = [line.split("│")[1:-1] for line in output.splitlines() if line.startswith("│")]
    return [row[index].strip() for row in rows if row[index].strip()]


def test_delete_with_an_id_and_all_is_a_usage_error(engram) -> None:  # type: ignore[no-untyped-def]
    keep = engram("add", "--user", "u", "keep me").output.strip()
    engram("add", "--user", "u", "and me")
    result = engram("delete", keep, "--all", "--user", "u", "--yes", ok=False)
    assert result.exit_code == 2
    assert "not both" in result.output
    page = json.loads(engram("list", "--user", "u", "--json").output)
    assert [i["text"] for i in page["items"]] == ["keep me", "and me"]
    neither = engram("delete", "--user", "u", ok=False)
    assert neither.exit_code == 2


NOT_UTF8 = "caf\udce9"  # what Python makes of the Latin-1 bytes b"caf\xe9" in argv


@pytest.mark.parametrize(
    "args",
    [
        ["add", "--user", "u", NOT_UTF8],
        ["add", "--user", NOT_UTF8, "text"],
        ["add", "--agent", NOT_UTF8, "text"],
        ["add", "--user", "u", "--session", NOT_UTF8, "text"],
        ["add", "--user", "u", "--name", NOT_UTF8, "text"],
        ["search", "--user", "u", NOT_UTF8],
        ["search", "--user", NOT_UTF8, "bees"],
        ["context", "--user", "u", NOT_UTF8],
        ["list", "--user", NOT_UTF8],
        ["list", "--user", "u", "--cursor", NOT_UTF8],
        ["show", NOT_UTF8],
        ["history", NOT_UTF8],
        ["delete", NOT_UTF8],
        ["delete", "--all", "--yes", "--user", NOT_UTF8],
        ["export", "--user", NOT_UTF8],
        ["--embedder", NOT_UTF8, "stats"],
    ],
    ids=lambda args: " ".join(a for a in args if a != NOT_UTF8),
)
def test_arguments_that_are_not_utf8_are_one_line_errors(engram, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    engram("add", "--user", "u", "bees on the roof")
    result = engram(*args, ok=False)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output.count("\n") == 1
    assert "is not valid UTF-8 ('caf\\xe9')" in result.output


def test_files_that_are_not_utf8_are_one_line_errors(engram, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"role": "user", "content": "caf\xe9", "user_id": "u"}\n')
    escaped = tmp_path / "escaped.jsonl"  # valid JSON, but "\udce9" is no character
    escaped.write_text('{"role": "user", "content": "caf\\udce9", "user_id": "u"}\n')
    for path in (latin1, escaped):
        result = engram("import", str(path), ok=False)
        assert result.exit_code == 1
        assert isinstance(result.exception, SystemExit), result.exception
        assert result.output.count("\n") == 1
        assert "UTF-8" in result.output


def test_a_file_name_that_is_not_utf8_is_still_a_file(engram, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    messages = tmp_path / f"{NOT_UTF8}.jsonl"
    messages.write_text('{"role": "user", "content": "bees", "user_id": "u"}\n')
    result = engram("import", str(messages))
    assert "imported 1 new memories" in result.output
    other = CliRunner().invoke(
        main, ["--db", str(tmp_path / f"{NOT_UTF8}.db"), "--embedder", "test", "stats"]
    )
    assert other.exit_code == 0, other.output


def test_latin1_argv_from_a_real_shell(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "engramdb.cli", "--db", tmp_path / "s.db"),
            *("--embedder", "test", "add", "--user", "u", b"caf\xe9"),
        ],
        capture_output=True,
        env={**os.environ, "LC_ALL": "C.UTF-8", "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr
    assert result.stderr.decode().splitlines() == [
        "error: argument 'TEXT' is not valid UTF-8 ('caf\\xe9'): give the text in UTF-8 "
        "(is the terminal or the script in another encoding, e.g. Latin-1?)"
    ]


def test_usage_errors_keep_exit_status_2(engram) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ["search", "--user", "u", "--limit", "abc", "q"],
        ["list", "--user", "u", "--limit", "abc"],
        ["context", "--user", "u", "--max-tokens", "abc", "q"],
        ["add", "--user", "u", "--role", NOT_UTF8, "text"],
        ["nonsense"],
    ):
        result = engram(*args, ok=False)
        assert result.exit_code == 2, args
        assert "Error:" in result.output


EVIL = "evil \x1b[2J\x1b]0;pwned\x07 \x9b31m [/red] [bold]x"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b")


def test_stored_control_characters_never_reach_the_terminal(engram) -> None:  # type: ignore[no-untyped-def]
    ident = engram("add", "--user", "u", "--name", "Mallory\x1b[31m", EVIL).output.strip()
    visible = "evil \\x1b[2J\\x1b]0;pwned\\x07 \\x9b31m [/red] [bold]x"
    wide = {"COLUMNS": "300"}
    for args in (["search", "--user", "u", "evil"], ["list", "--user", "u"]):
        out = engram(*args, env=wide).output
        assert visible in out  # markup shown as typed, controls as escapes
        assert "Mallory\\x1b[31m" in out
        assert not any(c in out for c in RAW_CONTROLS)
    context = engram("context", "--user", "u", "evil").output
    assert f"Mallory\\x1b[31m: {visible}" in context
    assert not any(c in context for c in RAW_CONTROLS)
    json_outputs: list[tuple[list[str], Callable[[Any], Any]]] = [
        (["show", ident], lambda d: d["text"]),
        (["history", ident], lambda d: d[0]["after"]["text"]),
        (["search", "--user", "u", "--json", "evil"], lambda d: d[0]["text"]),
        (["list", "--user", "u", "--json"], lambda d: d["items"][0]["text"]),
    ]
    for args, text_of in json_outputs:
        out = engram(*args).output
        assert not any(c in out for c in RAW_CONTROLS), args
        assert text_of(json.loads(out)) == EVIL  # escaped, not lost


def test_markup_in_errors_is_printed_not_parsed(engram) -> None:  # type: ignore[no-untyped-def]
    result = engram("add", "--user", "u", "--time", "[/x] \x1b[2J", "text", ok=False)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "timestamp '[/x] \\x1b[2J' is not a date" in result.output


@pytest.mark.parametrize("columns", ["60", "80", "200"])
def test_tables_print_whole_ids_that_show_accepts(engram, columns: str) -> None:  # type: ignore[no-untyped-def]
    added = {engram("add", "--user", "u", f"bees note {i}").output.strip() for i in range(3)}
    env = {"COLUMNS": columns}
    for args, column in ((["search", "--user", "u", "bees"], -1), (["list", "--user", "u"], 0)):
        printed = _column(engram(*args, env=env).output, column)
        assert set(printed) == added, args
        for ident in printed:
            assert json.loads(engram("show", ident).output)["id"] == ident
            assert json.loads(engram("history", ident).output)[0]["memory_id"] == ident
    ident = printed[0]
    assert engram("delete", ident).output.strip() == f"deleted {ident}"


def test_demo_honours_the_global_db(tmp_path: Path) -> None:
    home_demo = tmp_path / "home" / "demo.db"  # ENGRAM_HOME of the conftest fixture
    store = tmp_path / "global.db"
    result = CliRunner().invoke(main, ["--db", str(store), "--embedder", "test", "demo"])
    assert result.exit_code == 0, result.output
    assert store.exists()
    assert not home_demo.exists()
    from_env = tmp_path / "from-env.db"
    result = CliRunner().invoke(
        main, ["--embedder", "test", "demo"], env={"ENGRAM_DB": str(from_env)}
    )
    assert result.exit_code == 0, result.output
    assert from_env.exists()
    assert not home_demo.exists()


def test_context_takes_its_budget_from_the_settings(engram) -> None:  # type: ignore[no-untyped-def]
    engram("add", "--user", "u", "I keep bees on the roof " + "and they make honey " * 20)
    assert "I keep bees" in engram("context", "--user", "u", "bees").output
    small = {"ENGRAM_CONTEXT_TOKENS": "20"}
    assert "No relevant memories." in engram("context", "--user", "u", "bees", env=small).output
    assert (
        "I keep bees"
        in engram("context", "--user", "u", "bees", "--max-tokens", "2000", env=small).output
    )
    zero = engram("context", "--user", "u", "bees", env={"ENGRAM_CONTEXT_TOKENS": "0"}, ok=False)
    assert zero.exit_code == 1
    assert "context_tokens=0 (from ENGRAM_CONTEXT_TOKENS) is not valid" in zero.output


def _in_a_terminal(*args: str) -> str:
    """stderr of `engram ARGS` run as its own process that believes it writes to a terminal
    (the progress bar only draws there, and rich decides that when the process starts)."""
    result = subprocess.run(
        [sys.executable, "-m", "engramdb.cli", "--embedder", "test", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TTY_COMPATIBLE": "1", "TERM": "xterm", "COLUMNS": "100"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_import_progress_has_a_total(engram, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    messages = tmp_path / "messages.jsonl"
    lines = [json.dumps({"role": "user", "content": f"note {i}", "user_id": "u"}) for i in range(3)]
    messages.write_text("\n".join(lines) + "\n\n")
    assert "3/3" in _in_a_terminal("--db", str(tmp_path / "a.db"), "import", str(messages))
    backup = tmp_path / "backup.jsonl"
    engram("import", str(messages))
    engram("export", str(backup))  # a header line, then 3 records
    assert "3/3" in _in_a_terminal("--db", str(tmp_path / "b.db"), "import", str(backup))


def test_import_progress_of_a_json_document_has_no_total(tmp_path: Path) -> None:
    locomo = tmp_path / "locomo.json"
    turns = [{"speaker": "Ana", "dia_id": f"D1:{i}", "text": f"note {i}"} for i in range(2)]
    sample = {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": turns,
        },
        "qa": [],
    }
    locomo.write_text(json.dumps([sample]))
    # Counting its messages would mean parsing it twice: the bar honestly says "?".
    assert "2/?" in _in_a_terminal("--db", str(tmp_path / "l.db"), "import", str(locomo))


def test_process_finishes_work_left_pending(engram, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    ident = engram("add", "--user", "ana", "I adopted a beagle").output.strip()
    with sqlite3.connect(tmp_path / "cli.db") as conn:  # as if the embedder had been down
        conn.execute("DELETE FROM vectors")
        conn.execute(
            "INSERT INTO jobs (tenant, kind, memory_rid, created_at, updated_at) "
            "SELECT tenant, 'embed', rid, 0, 0 FROM memories"
        )
    assert json.loads(engram("stats").output)["jobs_pending"] == 1
    assert engram("process").output.strip() == (
        "embedded 1, extracted 0, facts added 0, failed 0, pending 0"
    )
    assert json.loads(engram("stats").output)["jobs_pending"] == 0
    assert ident in engram("search", "--user", "ana", "beagle", "--json").output
