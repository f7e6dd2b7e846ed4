"""Docs coverage: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from engramdb import __all__ as exported
from engramdb.cli import main
from engramdb.config import SETTINGS

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in text, f"{setting.name} is not in docs/configuration.md"
        assert setting.env in text


def test_every_cli_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert f"engram {name}" in readme, f"`engram {name}` is not in the README"
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0


def test_public_api_is_curated() -> None:
    assert "Memory" in exported
    assert "MemoryError" not in exported
