"""Tolerant JSON reading: any JSON object, however a model decorates it, comes back equal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engramdb.llms.parse import ReplyError, drop_trailing_commas, parse_reply, shape_problem

CLAIMS = {
    "type": "object",
    "properties": {"claims": {"type": "array"}, "note": {"type": ["string", "null"]}},
    "required": ["claims"],
}

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_objects = st.dictionaries(st.text(), _json, max_size=5)
#: Prose a model puts around its JSON: words and punctuation, but no JSON of its own.
_prose = st.text(
    alphabet=st.characters(
        categories=("L", "N", "Zs"), include_characters=".,:;!?'-\n", exclude_characters="<>"
    ),
    max_size=40,
)


def _fenced(body: str, before: str, after: str) -> str:
    return f"{before}\n```json\n{body}\n```\n{after}"


def _prose_around(body: str, before: str, after: str) -> str:
    return f"{before} {body} {after}"


def _thought(body: str, before: str, after: str) -> str:
    # A closed block may hold anything, JSON drafts included.
    return f'<think>{before} {{"draft": [1, 2]}} {after}</think>\n{body}'


def _unclosed_thought(body: str, before: str, after: str) -> str:
    return f"<think>{before}\n{body}"


def _closing_tag_only(body: str, before: str, after: str) -> str:
    # Chat templates that open the block themselves leave only its end in the reply.
    return f"{before} [draft] {{not: json}}</think>{body}{after}"


DECORATIONS: list[Callable[[str, str, str], str]] = [
    _fenced,
    _prose_around,
    _thought,
    _unclosed_thought,
    _closing_tag_only,
]


def _with_trailing_comma(body: str, value: dict[str, Any]) -> str:
    """The serialisation with a comma after the object's last member (when it has one)."""
    return body[:-1] + ",}" if value else body


@settings(max_examples=300, deadline=None)
@given(
    value=_objects,
    decorate=st.sampled_from(DECORATIONS),
    before=_prose,
    after=_prose,
    indent=st.sampled_from([None, 2]),
    comma=st.booleans(),
)
def test_any_object_survives_any_decoration(
    value: dict[str, Any],
    decorate: Callable[[str, str, str], str],
    before: str,
    after: str,
    indent: int | None,
    comma: bool,
) -> None:
    body = json.dumps(value, indent=indent, ensure_ascii=bool(indent))
    if comma:
        body = _with_trailing_comma(body, value)
    assert parse_reply(decorate(body, before, after)) == value


@settings(max_examples=100, deadline=None)
@given(items=st.lists(_objects, max_size=4), decorate=st.sampled_from(DECORATIONS))
def test_a_bare_list_is_wrapped_in_the_one_key_that_holds_it(
    items: list[dict[str, Any]], decorate: Callable[[str, str, str], str]
) -> None:
    reply = decorate(json.dumps(items), "Here you go:", "Hope that helps.")
    assert parse_reply(reply, CLAIMS) == {"claims": items}


@settings(max_examples=100, deadline=None)
@given(value=_json)
def test_dropping_trailing_commas_never_changes_valid_json(value: Any) -> None:
    text = json.dumps(value)
    assert json.loads(drop_trailing_commas(text)) == value


def test_a_list_is_not_wrapped_when_two_keys_could_hold_it() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "array"}, "b": {"type": "array"}},
        "required": ["a"],
    }
    with pytest.raises(ReplyError, match="expected a JSON object, got array"):
        parse_reply("[1, 2]", schema)


def test_the_first_candidate_of_the_asked_shape_wins() -> None:
    reply = 'Schema: {"type": "object"}. Answer: {"claims": [{"s": 1}]}'
    assert parse_reply(reply, CLAIMS) == {"claims": [{"s": 1}]}


def test_an_unclosed_thought_prefers_its_last_json() -> None:
    reply = '<think>first {"claims": ["draft"]} then\n{"claims": ["final"]}'
    assert parse_reply(reply, CLAIMS) == {"claims": ["final"]}


def test_escaped_quotes_and_brackets_inside_strings_are_text() -> None:
    reply = 'ok {"claims": ["a \\"quoted\\" ] } , word", "}{"],} done'
    assert parse_reply(reply, CLAIMS) == {"claims": ['a "quoted" ] } , word', "}{"]}


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("no json here", "holds no JSON"),
        ('{"claims": [1, 2', "holds no JSON"),  # cut off
        ('{"items": []}', "lacks the required key(s) 'claims'"),
        ('{"claims": "none"}', "key 'claims' should be a JSON array, got string"),
        ('{"claims": [], "note": 3}', "key 'note' should be a JSON string or null, got integer"),
        ('"just a string"', "expected a JSON object, got string"),
    ],
)
def test_unusable_replies_say_what_was_wrong(reply: str, problem: str) -> None:
    with pytest.raises(ReplyError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_reply(reply, CLAIMS)


def test_booleans_are_not_numbers() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert shape_problem({"n": True}, schema) == "key 'n' should be a JSON integer, got boolean"
    assert shape_problem({"n": 3}, schema) is None
