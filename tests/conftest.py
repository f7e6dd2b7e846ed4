"""Shared fixtures: real SQLite stores in a temporary folder, the deterministic test embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engramdb import Memory


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch the developer's real store or config.
    monkeypatch.setenv("ENGRAM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGRAM_CONFIG", raising=False)
    monkeypatch.delenv("ENGRAM_EMBEDDER", raising=False)


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    with Memory(tmp_path / "store.db", embedder="test") as m:
        yield m
