"""Checks of caller input shared by every public entry point.

Each check raises a specific :class:`~engramdb.errors.InvalidInput` that names the argument and
says what to give instead, before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ContentTooLarge, InvalidInput, shorten

#: Deepest nesting accepted in metadata (deeper JSON is a mistake, and would hit recursion limits).
MAX_METADATA_DEPTH = 32
#: Largest metadata accepted, as JSON characters.
MAX_METADATA_CHARS = 64_000
#: Longest id, name, session, user or agent accepted.
MAX_NAME_CHARS = 512
#: Integers in metadata must fit in 64 bits: SQLite's JSON functions and most JSON readers
#: cannot hold more.
_MAX_INT = 2**63
#: The first and last instants of years 1 to 9999 as epoch seconds. Near year 9999 a float has
#: about 30 µs of precision, so the last microsecond of the year would round into year 10000.
FIRST_INSTANT = datetime(1, 1, 1, tzinfo=UTC).timestamp()
LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp()


def is_unicode(text: str) -> bool:
    """Whether a str can be stored as UTF-8 (lone surrogates, e.g. from undecodable bytes,
    cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_arg(value: object, where: str, *, max_chars: int | None = None) -> str:
    """A non-empty string of valid Unicode."""
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{where} is empty: give some text")
    if not is_unicode(value):
        raise InvalidInput(
            f"{where} is not valid Unicode (it holds lone surrogates, e.g. bytes that were not "
            "UTF-8): decode the input as UTF-8 first"
        )
    if max_chars is not None and len(value) > max_chars:
        raise ContentTooLarge(where, len(value), max_chars)
    return value


def name_arg(value: object, where: str) -> str | None:
    """An optional short identifier (user, agent, session, speaker, id): None or a string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string or None, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{where} is empty: give a name, or None")
    if len(value) > MAX_NAME_CHARS or not is_unicode(value) or "\x00" in value:
        raise InvalidInput(
            f"{where} must be valid Unicode without NUL, at most {MAX_NAME_CHARS} characters"
        )
    return value


def int_arg(value: object, where: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An int within bounds (bools and floats are refused, not rounded)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"{where} must be an integer, got {type(value).__name__} {shorten(value, 40)}"
        )
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise InvalidInput(f"{where} must be at least {minimum}{upper}, got {shorten(value, 40)}")
    return value


def flag_arg(value: object, where: str) -> bool:
    """True or False (not a truthy string such as "no")."""
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} must be True or False, got {type(value).__name__}")
    return value


def choice_arg(value: object, where: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"{where} {shorten(value, 40)} is not one of {', '.join(allowed)}")
    return value


def callback_arg(value: object, where: str) -> Callable[..., Any] | None:
    """None or a function."""
    if value is not None and not callable(value):
        raise InvalidInput(f"{where} must be a function or None, got {type(value).__name__}")
    return value


def path_arg(value: object, where: str) -> Path:
    """A file system path given as a str or path object (not bytes, not empty, no NUL)."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise InvalidInput(
            f"{where} must be a path (str or pathlib.Path), got {type(value).__name__}"
        )
    if not text or "\x00" in text:
        raise InvalidInput(f"{where} {shorten(text)} is not a path: give a file name")
    return Path(text)


def file_arg(value: object, where: str) -> Path:
    """The path of an existing file to read."""
    path = path_arg(value, where)
    try:
        mode = path.stat().st_mode
    except OSError as exc:  # missing, a name too long, no permission to look
        raise InvalidInput(
            f"{where} {shorten(str(path), 200)} cannot be read: {exc.strerror}"
        ) from exc
    if not stat.S_ISREG(mode):
        raise InvalidInput(
            f"{where} {shorten(str(path), 200)} is not a file (a folder?): give a file"
        )
    return path


def epoch(moment: datetime) -> float:
    """An aware datetime as epoch seconds that read back as a datetime again.

    A float cannot place the last microseconds of year 9999 (they round into year 10000): those
    are kept as the last millisecond of the year.
    """
    return min(max(moment.timestamp(), FIRST_INSTANT), LAST_INSTANT)


def metadata_arg(value: object, where: str) -> dict[str, Any]:
    """A JSON object of strings, finite numbers, booleans, None, lists and objects."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be a dict, got {type(value).__name__}")
    _check_json(value, where, 0)
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    if len(text) > MAX_METADATA_CHARS:
        raise InvalidInput(
            f"{where} is {len(text)} characters as JSON, over the limit of {MAX_METADATA_CHARS}: "
            "keep large payloads elsewhere and store a reference"
        )
    return dict(json.loads(text))


def _check_json(value: object, where: str, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise InvalidInput(f"{where} is nested deeper than {MAX_METADATA_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -_MAX_INT <= value < _MAX_INT:
            raise InvalidInput(
                f"{where} holds an integer beyond 64 bits ({shorten(value, 30)}): store it as a "
                "string"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where} holds {value}: JSON has no NaN or Infinity")
        return
    if isinstance(value, str):
        if not is_unicode(value):
            raise InvalidInput(f"{where} holds a string that is not valid Unicode")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not is_unicode(key):
                raise InvalidInput(f"{where} has a key {shorten(key, 40)} that is not a string")
            _check_json(item, where, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item, where, depth + 1)
        return
    raise InvalidInput(
        f"{where} holds a {type(value).__name__}: use strings, numbers, booleans, None, "
        "lists and dicts"
    )
