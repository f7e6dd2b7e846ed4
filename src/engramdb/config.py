"""Settings: one table, one precedence rule.

Every setting has a name, a default, an environment variable and a help text. A value is taken
from, in order: the keyword argument given to :class:`engramdb.Memory`, the config file
(``$ENGRAM_HOME/config.toml`` or ``ENGRAM_CONFIG``), the environment, the default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One configurable value."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return "ENGRAM_" + self.name.upper()


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "home",
        None,
        "Folder of the default store file and config.toml "
        "(default: the platform's user data directory).",
    ),
    Setting(
        "embedder",
        "local",
        "Embedding model: 'local' (bundled all-MiniLM-L6-v2, offline), "
        "'openai:<model>' (any OpenAI-compatible endpoint) or 'test' (deterministic, no model).",
    ),
    Setting("tenant", "default", "Tenant of every record written and read by this instance."),
    Setting(
        "max_content_chars",
        32_000,
        "Longest message content accepted by add(), in "
        "characters; longer content is refused with ContentTooLarge.",
        int,
    ),
    Setting(
        "candidates", 100, "Candidates taken from each index (lexical, dense) before fusion.", int
    ),
    Setting(
        "lexical_weight",
        1.5,
        "Weight of the lexical (BM25) list in the fusion, relative to 1 for the dense list.",
        float,
    ),
    Setting("rrf_k", 20, "Reciprocal-rank-fusion constant: larger flattens rank differences.", int),
    Setting(
        "synchronous",
        "full",
        "SQLite synchronous mode: 'full' survives power loss, "
        "'normal' survives process crashes only and writes faster.",
    ),
    Setting("context_tokens", 2000, "Default token budget of context().", int),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def default_home() -> Path:
    """The folder of the default store: ``ENGRAM_HOME`` or the user data directory."""
    env = os.environ.get("ENGRAM_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("engramdb"))


def _config_file(home: Path) -> Path:
    env = os.environ.get("ENGRAM_CONFIG")
    return Path(env).expanduser() if env else home / "config.toml"


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_BY_NAME)}"
        )
    return data


def _from_env(setting: Setting) -> Any:
    raw = os.environ.get(setting.env)
    if raw is None:
        return None
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{setting.env}={raw!r} is not valid: {exc}") from exc


def resolve(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All settings, resolved by precedence: argument > config file > environment > default.

    Raises:
        ConfigError: an unknown setting name or a malformed value.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(_BY_NAME)}")
    home = Path(overrides["home"]) if "home" in overrides else default_home()
    from_file = _read_config_file(_config_file(home))
    resolved: dict[str, Any] = {}
    for setting in SETTINGS:
        for value in (overrides.get(setting.name), from_file.get(setting.name), _from_env(setting)):
            if value is not None:
                resolved[setting.name] = value
                break
        else:
            resolved[setting.name] = setting.default
    resolved["home"] = str(home)
    return resolved
