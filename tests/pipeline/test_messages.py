"""Index keys: a message is indexed with the end of the turn before it; the dense key cuts that
quote shorter, as a pure function of the index key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engramdb.backends.base import Row
from engramdb.pipeline import messages as msgs
from engramdb.types import Scope

WHEN = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)


def _previous(text: str, name: str | None = "Mel") -> Row:
    prepared = msgs.prepare(
        msgs.normalise([{"role": "user", "content": text, "name": name}]),
        scope=Scope(tenant="t", user_id="u"),
        session_id="s1",
        metadata=None,
        max_chars=100_000,
        now=WHEN,
    )
    return prepared[0].row


def test_index_key_quotes_the_end_of_the_previous_turn() -> None:
    before = _previous("word " * 200 + "did you like the concert?")
    key = msgs.index_text_for("Caroline", "Loved it!", WHEN, before)
    own, mark, quoted = key.partition(msgs.CONTEXT_MARK)
    assert own == "Caroline: Loved it!"
    assert mark
    assert quoted.startswith("Mel: …") and quoted.endswith("did you like the concert?)")
    assert len(quoted) < 320


def test_a_zero_quote_embeds_the_own_text_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(msgs, "EMBED_CONTEXT_CHARS", 0)
    key = msgs.index_text_for("Caroline", "Loved it!", WHEN, _previous("did you like it?"))
    assert msgs.embed_key(key) == "Caroline: Loved it!"


@pytest.mark.parametrize("chars", [40, 120, 300])
def test_dense_key_cuts_the_quote_and_keeps_the_own_text(
    monkeypatch: pytest.MonkeyPatch, chars: int
) -> None:
    monkeypatch.setattr(msgs, "EMBED_CONTEXT_CHARS", chars)
    before = _previous("the first part of a long question " * 8 + "did you like the concert?")
    key = msgs.index_text_for("Caroline", "Loved it!", WHEN, before)
    dense = msgs.embed_key(key)
    assert dense.startswith("Caroline: Loved it!" + msgs.CONTEXT_MARK + "Mel: ")
    assert dense.endswith(")")
    quoted = dense.partition(msgs.CONTEXT_MARK + "Mel: ")[2][:-1]
    assert len(quoted) <= chars + 1
    assert msgs.embed_key(dense) == dense  # cutting twice changes nothing
    if chars >= 40:
        assert quoted.endswith("did you like the concert?")


def test_a_key_without_a_previous_turn_is_embedded_as_is() -> None:
    key = msgs.index_text_for(None, "I adopted a puppy yesterday", WHEN, None)
    assert msgs.CONTEXT_MARK not in key
    assert msgs.embed_key(key) == key
