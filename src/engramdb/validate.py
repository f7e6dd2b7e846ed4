"""Checks of caller input shared by every public entry point.

Each check raises a specific :class:`~engramdb.errors.InvalidInput` that names the argument and
says what to give instead, before anything is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInput

#: Deepest nesting accepted in metadata (deeper JSON is a mistake, and would hit recursion limits).
MAX_METADATA_DEPTH = 32
#: Largest metadata accepted, as JSON characters.
MAX_METADATA_CHARS = 64_000
#: Longest id, name, session, user or agent accepted.
MAX_NAME_CHARS = 512


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
        raise InvalidInput(f"{where} has {len(value)} characters, over the limit of {max_chars}")
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
        raise InvalidInput(f"{where} must be an integer, got {type(value).__name__} {value!r:.40}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise InvalidInput(f"{where} must be at least {minimum}{upper}, got {value}")
    return value


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
    if value is None or isinstance(value, (bool, int)):
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
                raise InvalidInput(f"{where} has a key {key!r:.40} that is not a string")
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
