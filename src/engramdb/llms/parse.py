"""Tolerant reading of JSON out of a model's reply.

Models wrap their JSON: in ```json fences, after "Here is the result:", after a ``<think>`` block
(closed, unclosed, or only its closing tag when the chat template opened it), with a trailing
comma, or as a bare list when an object was asked. :func:`parse_reply` looks through those in
order of likelihood and returns the first JSON value that has the shape the schema asks for.
Validation is deliberately light (top-level type, required keys, their types): callers check the
items they use themselves and drop the bad ones rather than fail a whole answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_CLOSER_NEXT = re.compile(r"\s*[}\]]")
#: What matters to bracket matching: whole strings (skipped), an unterminated one, brackets, commas.
_TOKENS = re.compile(r'(?P<string>"(?:[^"\\]|\\.)*")|(?P<open>")|[\[\]{},]', re.DOTALL)
_OPEN = "<think>"
_CLOSE = "</think>"
_PAIRS = {"{": "}", "[": "]"}
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


class ReplyError(ValueError):
    """A reply holds no JSON of the asked shape; the message says what was wrong, for the model."""


def parse_reply(text: str, schema: Mapping[str, Any] | None = None) -> Any:
    """The JSON value a reply carries, fitted to ``schema``'s top-level shape.

    Raises:
        ReplyError: no candidate parses, or none has the shape the schema asks for.
    """
    problem: str | None = None
    for candidate in candidates(text):
        value = fit(candidate, schema) if schema else candidate
        found = shape_problem(value, schema) if schema else None
        if found is None:
            return value
        problem = problem or found
    raise ReplyError(problem or "the reply holds no JSON value")


def candidates(text: str) -> Iterator[Any]:
    """Every JSON object or array in the reply that parses, most likely answer first."""
    for view, last_first in _views(text):
        spans = list(_spans(view))
        for span in reversed(spans) if last_first else spans:
            value = loads(span)
            if value is not None:
                yield value


def loads(text: str) -> Any:
    """``json.loads`` after dropping trailing commas; None when the text is not JSON."""
    try:
        return json.loads(drop_trailing_commas(text))
    except ValueError:
        return None


def drop_trailing_commas(text: str) -> str:
    """Remove each comma (outside strings) that only whitespace separates from ``}`` or ``]``."""
    out: list[str] = []
    kept = 0
    for token in _TOKENS.finditer(text):
        if token["open"] is not None:
            break  # the rest is an unterminated string
        if token.group() == "," and _CLOSER_NEXT.match(text, token.end()):
            out.append(text[kept : token.start()])
            kept = token.end()
    out.append(text[kept:])
    return "".join(out)


def fit(value: Any, schema: Mapping[str, Any]) -> Any:
    """Wrap a bare list in the object the schema asks for, when only one key can hold it."""
    if not (isinstance(value, list) and schema.get("type") == "object"):
        return value
    properties: Mapping[str, Any] = schema.get("properties", {})
    arrays = [k for k, sub in properties.items() if _allows(sub.get("type"), "array")]
    required = set(schema.get("required", ()))
    if len(arrays) == 1 and required <= {arrays[0]}:
        return {arrays[0]: value}
    return value


def shape_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    """What keeps ``value`` from the schema's top-level shape, in words; None if it fits."""
    expected = schema.get("type")
    if expected is not None and not is_type(value, expected):
        return f"expected a JSON {_words(expected)}, got {json_type(value)}"
    if not isinstance(value, dict):
        return None
    missing = [key for key in schema.get("required", ()) if key not in value]
    if missing:
        return f"the object lacks the required key(s) {', '.join(map(repr, missing))}"
    for key, sub in schema.get("properties", {}).items():
        want = sub.get("type") if isinstance(sub, Mapping) else None
        if key in value and want is not None and not is_type(value[key], want):
            return f"key {key!r} should be a JSON {_words(want)}, got {json_type(value[key])}"
    return None


def is_type(value: Any, expected: str | list[str]) -> bool:
    """Whether ``value`` is of a JSON-schema type (or one of a list of them)."""
    names = [expected] if isinstance(expected, str) else expected
    for name in names:
        kinds = _JSON_TYPES.get(name, (object,))
        # bool is an int in Python, never a JSON number.
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return True
    return False


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    for name in ("boolean", "null", "object", "array", "string", "integer", "number"):
        if is_type(value, name):
            return name
    return type(value).__name__


def _allows(expected: object, name: str) -> bool:
    return expected == name or (isinstance(expected, list) and name in expected)


def _words(expected: str | list[str]) -> str:
    return expected if isinstance(expected, str) else " or ".join(expected)


def _views(text: str) -> Iterator[tuple[str, bool]]:
    """Regions of the reply to search, best first, each with "prefer its last JSON value"."""
    answer_at = _thought_end(text)
    if answer_at is not None:
        yield text[answer_at:], False
    elif text.lstrip().startswith(_OPEN):
        # The reasoning never closed (cut off, or a sloppy model): an answer, if any, comes last.
        yield text.lstrip()[len(_OPEN) :], True
    for fenced in _FENCE.finditer(text):
        yield fenced.group(1), False
    yield text, False


def _thought_end(text: str) -> int | None:
    """Where the answer starts after the first ``</think>`` tag (one inside a JSON string of
    the reply is text, not a tag); None without one."""
    if _CLOSE not in text:
        return None
    inside = [
        (start, end) for start, end in _span_bounds(text) if loads(text[start:end]) is not None
    ]
    for tag in re.finditer(re.escape(_CLOSE), text):
        if not any(start <= tag.start() < end for start, end in inside):
            return tag.end()
    return None


def _spans(text: str) -> Iterator[str]:
    """The whole text, then each balanced ``{...}`` / ``[...]`` span that is not inside another."""
    stripped = text.strip()
    if stripped:
        yield stripped
    for start, end in _span_bounds(text):
        yield text[start:end]


def _span_bounds(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    while (start := _next_open(text, start)) >= 0:
        end = _balanced_end(text, start)
        if end is None:
            start += 1
            continue
        yield start, end
        # A span that parsed is an answer; one that did not may still hold one inside it.
        start = end if loads(text[start:end]) is not None else start + 1


def _next_open(text: str, start: int) -> int:
    brace, bracket = text.find("{", start), text.find("[", start)
    found = [i for i in (brace, bracket) if i >= 0]
    return min(found) if found else -1


def _balanced_end(text: str, start: int) -> int | None:
    """The index just past the bracket closing the one at ``start`` (None if it never closes)."""
    stack: list[str] = []
    for token in _TOKENS.finditer(text, start):
        char = token.group()
        if token["open"] is not None:
            return None
        if char in _PAIRS:
            stack.append(_PAIRS[char])
        elif char in "}]":
            if not stack or stack.pop() != char:
                return None
            if not stack:
                return token.end()
    return None
