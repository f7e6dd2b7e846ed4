"""Index keys: the one place that decides what a record is found and embedded under.

``add``, ``update``, the re-keying after a delete, import and re-embedding all call this module,
so a record gets the same key, and the same vector, whichever way it came in.

A message is keyed by its speaker, its text and its resolved dates, together with the end of the
turn before it in its session: a reply ("Yes, last weekend!") says little on its own, and keyed
with the turn it answers both indexes can find it (key expansion; +8 points of evidence recall on
LoCoMo dev, docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from ..records import Keys, Row
from ..temporal import annotate

#: How much of the previous turn a message is indexed with (lexical key).
CONTEXT_CHARS = 300
#: How much of it the dense key keeps. Every character is embedded and costs ingest time; on the
#: dev sets 100 characters recalled as well as 300 (LoCoMo recall@10 0.733 vs 0.736, LongMemEval
#: 24 questions s_recall_all@5 1.0 vs 0.96) and embedded 1.3x (LoCoMo) to 1.7x (LongMemEval) faster.
EMBED_CONTEXT_CHARS = 100


def own_key(name: str | None, content: str, speaker_clock: datetime) -> str:
    """The speaker, the text, and the dates its relative expressions resolve to."""
    text = f"{name}: {content}" if name else content
    notes = annotate(content, speaker_clock)
    return f"{text} ({notes})" if notes else text


def keys_for(name: str | None, content: str, speaker_clock: datetime, previous: Row | None) -> Keys:
    """The keys of a message said at ``speaker_clock`` after the turn ``previous``."""
    return with_previous(own_key(name, content, speaker_clock), previous)


def with_previous(own: str, previous: Row | None) -> Keys:
    """Keys quoting the end of ``previous``: what a reply answers ("...did you like it?")."""
    if previous is None:
        return Keys(own=own)
    return Keys(own=own, context_name=previous.name, context_text=tail(previous.text))


def tail(text: str, chars: int = CONTEXT_CHARS) -> str:
    """The last ``chars`` characters of ``text``, from a word start, marked as cut."""
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    return "…" + cut[cut.find(" ") + 1 :]


def embed_text(keys: Keys) -> str:
    """The text embedded for a record: its own key and the last ``EMBED_CONTEXT_CHARS``
    characters of the turn before.

    The message's own text comes first so that an embedder truncating long input (MiniLM reads
    256 tokens) never loses it.
    """
    if not keys.context_text:
        return keys.own
    who = f"{keys.context_name}: " if keys.context_name else ""
    return f"{keys.own}\n(after {who}{tail(keys.context_text, EMBED_CONTEXT_CHARS)})"


def embed_hash(embedder_name: str, text: str) -> str:
    """Key of the embedding cache: the model and the exact text embedded."""
    payload = f"{embedder_name}\x00{text}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(payload).hexdigest()
