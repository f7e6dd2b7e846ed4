"""Settings: one table, one precedence rule.

Every setting has a name, a default, an environment variable and a help text. A value is taken
from, in order: the keyword argument given to :class:`engramdb.Memory`, the config file
(``$ENGRAM_HOME/config.toml`` or ``ENGRAM_CONFIG``), the environment, the default.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigError, shorten
from .validate import is_unicode

#: Largest count a setting takes (SQLite's and numpy's limits are far above any sensible value).
_MOST = 2**31 - 1


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    if "\x00" in value or not is_unicode(value):
        raise ValueError("expected valid Unicode without NUL")
    return value


def _count(value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= _MOST:
        raise ValueError(f"expected a whole number from {least} to {_MOST}")
    return int(value)


def _offset(value: Any) -> int:
    return _count(value, 0)


def _weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a finite number of at least 0")
    return float(value)


def _synchronous(value: Any) -> str:
    mode = value.strip().lower() if isinstance(value, str) else None
    if mode not in ("full", "normal", "extra", "off"):
        raise ValueError("expected 'full' or 'normal'")
    return mode


def _consolidate(value: Any) -> str:
    mode = value.strip().lower() if isinstance(value, str) else None
    if mode not in ("inline", "deferred", "off"):
        raise ValueError("expected 'inline', 'deferred' or 'off'")
    return mode


def _optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    return _text(value)


def _folder(value: Any) -> str:
    return _text(os.fspath(value) if isinstance(value, os.PathLike) else value)


@dataclass(frozen=True)
class Setting:
    """One configurable value: ``parse`` reads it from the environment's text, ``check`` refuses
    a malformed value from any source (ValueError says what it expected)."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    check: Callable[[Any], Any] = _text

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
        check=_folder,
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
        _count,
    ),
    Setting(
        "candidates",
        100,
        "Candidates taken from each index (lexical, dense) before fusion.",
        int,
        _count,
    ),
    Setting(
        "lexical_weight",
        1.5,
        "Weight of the lexical (BM25) list in the fusion, relative to 1 for the dense list.",
        float,
        _weight,
    ),
    Setting(
        "rrf_k",
        20,
        "Reciprocal-rank-fusion constant: larger flattens rank differences.",
        int,
        _offset,
    ),
    Setting(
        "synchronous",
        "full",
        "SQLite synchronous mode: 'full' survives power loss, "
        "'normal' survives process crashes only and writes faster.",
        check=_synchronous,
    ),
    Setting("context_tokens", 2000, "Default token budget of context().", int, _count),
    Setting(
        "consolidate",
        "inline",
        "Fact extraction and reconciliation after add(): 'inline' (before add() returns), "
        "'deferred' (queued; Memory.process() or `engram process` runs it) or 'off'.",
        check=_consolidate,
    ),
    Setting(
        "llm",
        None,
        "Language model for fact extraction: 'openai:<model>', 'ollama:<model>', "
        "'test', or none (the offline rules; the default).",
        check=_optional_text,
    ),
    Setting(
        "profile_chars",
        1200,
        "Most characters of a profile (core memory); entries late in its order (tastes after "
        "identity, home and work) are left out first.",
        int,
        _count,
    ),
    Setting(
        "rate_limit",
        1200,
        "Server: requests per minute one API key may make (bursts of up to a tenth of that "
        "pass at once); 0 turns the limit off.",
        int,
        _offset,
    ),
    Setting(
        "max_body_bytes",
        10_000_000,
        "Server: largest request body accepted, in bytes (an import may be ten times larger).",
        int,
        _count,
    ),
    Setting(
        "request_timeout",
        30.0,
        "Server: seconds a read (search, context, listings) may take before it answers 504; "
        "writes are never cut off half-way.",
        float,
        _weight,
    ),
    Setting(
        "webhook_retries",
        5,
        "Server: delivery attempts of one event to a webhook before it is given up "
        "(with exponential backoff between them).",
        int,
        _count,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
HOME = _BY_NAME["home"]


def default_home() -> Path:
    """The folder of the default store: ``ENGRAM_HOME`` or the user data directory."""
    env = os.environ.get("ENGRAM_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("engramdb"))


def _config_file(home: Path) -> Path:
    env = os.environ.get("ENGRAM_CONFIG")
    return Path(env).expanduser() if env else home / "config.toml"


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        if not path.exists():
            return {}
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
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
    unknown = sorted(
        k if isinstance(k, str) else shorten(k, 40) for k in set(overrides) - set(_BY_NAME)
    )
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(_BY_NAME)}")
    home = Path(_checked(HOME, overrides.get("home"), "the argument") or default_home())
    path = _config_file(home)
    from_file = _read_config_file(path)
    resolved = {
        s.name: _pick(s, overrides, from_file, str(path)) for s in SETTINGS if s is not HOME
    }
    resolved["home"] = str(home)
    return resolved


def _pick(
    setting: Setting, overrides: Mapping[str, Any], from_file: Mapping[str, Any], path: str
) -> Any:
    """The setting's value from the first source that gives one, checked."""
    if overrides.get(setting.name) is not None:
        return _checked(setting, overrides[setting.name], "the argument")
    if from_file.get(setting.name) is not None:
        return _checked(setting, from_file[setting.name], path)
    from_env = _from_env(setting)
    return setting.default if from_env is None else _checked(setting, from_env, setting.env)


def _checked(setting: Setting, value: Any, source: str) -> Any:
    if value is None:
        return None
    try:
        return setting.check(value)
    except ValueError as exc:
        raise ConfigError(
            f"setting {setting.name}={shorten(value, 40)} (from {source}) is not valid: {exc}"
        ) from exc
