"""Index keys: a message is keyed with the end of the turn before it, as fields; the embedded
text cuts that quote shorter, as a pure function of the keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engramdb.pipeline import keys as k
from engramdb.pipeline import messages as msgs
from engramdb.records import Keys, Row
from engramdb.types import Scope

WHEN = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)


def _previous(text: str, name: str | None = "Mel") -> Row:
    return msgs.prepare(
        msgs.normalise([{"role": "user", "content": text, "name": name}]),
        scope=Scope(tenant="t", user_id="u"),
        session_id="s1",
        metadata=None,
        max_chars=100_000,
        now=WHEN,
    )[0]


def test_keys_quote_the_end_of_the_previous_turn() -> None:
    before = _previous("word " * 200 + "did you like the concert?")
    keys = k.keys_for("Caroline", "Loved it!", WHEN, before)
    assert keys.own == "Caroline: Loved it!"
    assert keys.context_name == "Mel"
    assert keys.context_text.endswith("did you like the concert?")
    assert len(keys.context_text) <= k.CONTEXT_CHARS + 1
    assert keys.quoted().startswith("Mel ")


def test_relative_dates_are_resolved_into_the_own_key() -> None:
    keys = k.keys_for(None, "I adopted a puppy yesterday", WHEN, None)
    assert keys == Keys(own="I adopted a puppy yesterday (yesterday = 7 May 2023)")
    assert k.embed_text(keys) == keys.own


@pytest.mark.parametrize("chars", [40, 120, 300])
def test_embedded_text_cuts_the_quote_and_keeps_the_own_text(
    chars: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(k, "EMBED_CONTEXT_CHARS", chars)
    before = _previous("word " * 200 + "did you like the concert?")
    keys = k.keys_for("Caroline", "Loved it!", WHEN, before)
    dense = k.embed_text(keys)
    assert dense.startswith("Caroline: Loved it!\n(after Mel: ")
    quoted = dense.partition("\n(after Mel: ")[2][:-1]
    assert quoted.endswith("did you like the concert?")
    assert len(quoted) <= chars + 1


def test_the_same_keys_always_give_the_same_embedded_text() -> None:
    before = _previous("Did you like the concert last weekend?")
    first = k.keys_for("Caroline", "Loved it!", WHEN, before)
    again = Keys(first.own, first.context_name, first.context_text)
    assert k.embed_text(first) == k.embed_text(again)
    assert k.embed_hash("m", k.embed_text(first)) == k.embed_hash("m", k.embed_text(again))
