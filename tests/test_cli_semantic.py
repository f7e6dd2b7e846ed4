"""`engram facts`, `profile`, `entities` and `process`, and the --llm / --consolidate options,
through click's runner on a real store file with the test embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engramdb.cli import main

Engram = Callable[..., Result]


@pytest.fixture
def engram(tmp_path: Path) -> Engram:
    runner = CliRunner()
    db = str(tmp_path / "cli.db")

    def run(*args: str, ok: bool = True, options: tuple[str, ...] = ()) -> Result:
        result = runner.invoke(main, ["--db", db, "--embedder", "test", *options, *args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def _maya(engram: Engram, *options: str) -> None:
    engram(
        "add", "--user", "maya", "--time", "2024-01-10T10:00:00",
        "I live in Lisbon. I went hiking with my sister Inês.", options=options,
    )  # fmt: skip
    engram(
        "add", "--user", "maya", "--time", "2024-05-28T10:00:00",
        "I moved to Porto yesterday!", options=options,
    )  # fmt: skip


def _lines(result: Result) -> list[str]:
    return result.stdout.strip().splitlines()


def test_facts_shows_a_superseded_fact_only_with_all(engram: Engram) -> None:
    _maya(engram)

    now = _lines(engram("facts", "--user", "maya"))
    everything = _lines(engram("facts", "--user", "maya", "--all"))

    assert not any("Lisbon" in line for line in now)
    porto = next(line for line in now if "Porto" in line)
    assert "[since 27 May 2024]" in porto
    lisbon = next(line for line in everything if "Lisbon" in line)
    assert "[from 10 January 2024 until 27 May 2024; superseded]" in lisbon
    assert len(everything) == len(now) + 1
    fact_id = lisbon.rsplit(" ", 1)[1]  # each line ends with the fact's id
    assert json.loads(engram("show", fact_id).stdout)["kind"] == "fact"


def test_facts_as_of_gives_what_was_true_then(engram: Engram) -> None:
    _maya(engram)

    then = engram("facts", "--user", "maya", "--as-of", "2024-03-01").stdout

    assert "Lisbon" in then
    assert "Porto" not in then


def test_facts_json_and_pages(engram: Engram) -> None:
    _maya(engram)

    first = json.loads(engram("facts", "--user", "maya", "--all", "--limit", "1", "--json").stdout)
    assert len(first["items"]) == 1
    assert first["items"][0]["kind"] == "fact"
    assert {"valid_from", "valid_to", "superseded_by"} <= set(first["items"][0])
    human = engram("facts", "--user", "maya", "--all", "--limit", "1").stdout
    assert f"more: --cursor {first['next_cursor']}" in human
    rest = json.loads(
        engram(
            "facts", "--user", "maya", "--all", "--cursor", first["next_cursor"], "--json"
        ).stdout
    )
    assert first["items"][0]["id"] not in {item["id"] for item in rest["items"]}
    assert rest["next_cursor"] is None


def test_profile_shows_the_new_city_after_a_move(engram: Engram) -> None:
    _maya(engram)

    text = engram("profile", "--user", "maya").stdout
    profile = json.loads(engram("profile", "--user", "maya", "--json").stdout)

    assert "Porto" in text
    assert "Lisbon" not in text
    home = next(e for e in profile["entries"] if e["attribute"] == "lives_in")
    assert home["value"] == "Porto"


def test_profile_of_a_scope_without_facts_says_so(engram: Engram) -> None:
    engram("add", "--user", "ana", "hello there")

    result = engram("profile", "--user", "ana")

    assert result.stdout == ""
    assert "no profile yet" in result.stderr


def test_entities_lists_ines_as_the_sister(engram: Engram) -> None:
    _maya(engram)

    listed = engram("entities", "--user", "maya").stdout
    named = json.loads(engram("entities", "--user", "maya", "--name", "Inês", "--json").stdout)

    assert "Inês: person, sister of Maya;" in listed
    assert [(e["name"], e["relation"], e["relation_of"]) for e in named] == [
        ("Inês", "sister", "Maya")
    ]
    assert engram("entities", "--user", "maya", "--name", "Nobody", "--json").stdout.strip() == "[]"


def test_llm_option_reaches_the_store(engram: Engram) -> None:
    # The offline rules do not read "My sister is called Inês"; the test model does.
    engram("add", "--user", "maya", "My sister is called Inês.", options=("--llm", "test"))

    assert "sister of Maya" in engram("entities", "--user", "maya").stdout


def test_deferred_add_then_process_extracts(engram: Engram) -> None:
    _maya(engram, "--consolidate", "deferred")
    assert engram("facts", "--user", "maya").stdout == ""
    assert json.loads(engram("stats").stdout)["jobs_pending"] == 2

    report = engram("process").stdout.strip()

    assert report == "embedded 0, extracted 2, facts added 3, failed 0, pending 0"
    assert "Porto" in engram("profile", "--user", "maya").stdout


def test_consolidate_off_queues_nothing(engram: Engram) -> None:
    _maya(engram, "--consolidate", "off")

    assert json.loads(engram("stats").stdout)["jobs_pending"] == 0
    assert engram("process").stdout.strip().startswith("embedded 0, extracted 0, facts added 0")
    assert engram("facts", "--user", "maya", "--all").stdout == ""


def test_process_progress_bar_ends_at_the_total(engram: Engram, tmp_path: Path) -> None:
    _maya(engram, "--consolidate", "deferred")
    # As a process that believes it writes to a terminal: rich decides that when it starts.
    result = subprocess.run(
        [sys.executable, "-m", "engramdb.cli", "--db", str(tmp_path / "cli.db"),
         "--embedder", "test", "process"],
        capture_output=True,
        text=True,
        env={**os.environ, "TTY_COMPATIBLE": "1", "TERM": "xterm", "COLUMNS": "100"},
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "extracting facts" in result.stderr
    assert "2/2" in result.stderr
    assert "extracted 2" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["facts"], "needs a scope"),
        (["profile"], "needs a scope"),
        (["entities", "--agent", "a"], None),  # a scope: fine, and empty
        (["facts", "--user", "maya", "--as-of", "next blue moon"], "is not a date"),
        (["facts", "--user", "maya", "--cursor", "bogus"], "is not a cursor"),
        (["facts", "--user", "maya", "--limit", "0"], "limit"),
        (["entities", "--user", "maya", "--name", ""], "name"),
        (["--llm", "nonsense", "facts", "--user", "maya"], "unknown llm 'nonsense'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_1(
    engram: Engram, args: list[str], message: str | None
) -> None:
    result = engram(*args, ok=message is None)
    if message is None:
        return
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_consolidate_mode_is_a_usage_error(engram: Engram) -> None:
    result = engram("--consolidate", "sometimes", "facts", "--user", "maya", ok=False)

    assert result.exit_code == 2
    assert "'inline', 'deferred', 'off'" in result.output
