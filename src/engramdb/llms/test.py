"""A deterministic language model for tests: no network, no weights, the same answer every time.

By default it answers the extraction prompt of :mod:`engramdb.pipeline.extract_llm` with a few
pattern rules over first-person sentences ("I moved to Porto yesterday" → "Maya moved to Porto
on 27 May 2024", attribute ``lives_in``), and anything else with a fixed short text. The point is
the plumbing (prompts, numbering, dates, retries, failures), not intelligence.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from ..errors import LLMError
from .base import LLM, Completion, JSONSchema, Message

Handler = Callable[[list[Message]], str]

#: A numbered message of the extraction prompt: ``[n] YYYY-MM-DD Weekday | Maya (user): text``.
MESSAGE_LINE = re.compile(
    r"^\[(?P<n>\d+)\] (?P<date>\d{4}-\d{2}-\d{2}) \w+ \| (?P<speaker>.+?)"
    r"(?: \((?P<role>\w+)\))?: (?P<text>.*?)(?: \[dates: [^\]]*\])?$",
    re.MULTILINE,
)
TEXT_REPLY = "OK."
#: What ``garble=True`` answers: JSON cut off mid-string, which no tolerance can read.
GARBLED = '{"claims": [{"subject": "Maya", "statement": "Maya mov'
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_NAME = r"(?P<value>[A-Z][\w'-]*(?: [A-Z][\w'-]*)*)"


class _Rule(NamedTuple):
    pattern: re.Pattern[str]
    attribute: str  # "{attr}": the group named attr
    kind: str
    entity_type: str | None = None
    relation: str | None = None
    ends: bool = False


_RULES = (
    _Rule(re.compile(rf"^I (?:no longer|don't) live in {_NAME}"), "lives_in", "fact", "place",
          "former home", ends=True),
    _Rule(re.compile(rf"^I (?:just |recently )?(?:moved|relocated) to {_NAME}"), "lives_in",
          "event", "place", "home"),
    _Rule(re.compile(rf"^I live in {_NAME}"), "lives_in", "fact", "place", "home"),
    _Rule(re.compile(rf"^I (?:quit|left) (?:my job at )?{_NAME}"), "works_at", "event",
          "organization", "former employer", ends=True),
    _Rule(re.compile(rf"^I (?:work|started working|started a new job|started) at {_NAME}"),
          "works_at", "fact", "organization", "employer"),
    _Rule(re.compile(rf"^My (?P<attr>sister|brother|mother|father|friend|partner|dog|cat)"
                     rf"(?:'s name)? is (?:called |named )?{_NAME}"), "{attr}", "relationship",
          "person", "{attr}"),
    _Rule(re.compile(r"^I (?P<attr>like|love|dislike|hate) (?P<value>[^,;]+)"), "{attr}",
          "preference"),
    _Rule(re.compile(r"^I (?P<verb>[a-z]+) (?P<value>.+)"), "note", "fact"),
)  # fmt: skip
_PREFERENCE = {"like": "likes", "love": "likes", "dislike": "dislikes", "hate": "dislikes"}


class TestLLM(LLM):
    """Answers from a handler, from canned replies, or from its own extraction rules.

    Args:
        handler: gives the reply text for the messages of a call.
        replies: canned reply texts, used in order (one per call); LLMError once used up.
        fail_times: the first this many calls raise a retryable LLMError.
        garble: every reply is JSON cut off mid-string.
        max_retries: how many times an unusable JSON answer is asked again.
        name: the model's name in usage, errors and completions.

    Attributes:
        prompts: the messages of every call, in order (failed ones included).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        replies: Sequence[str] | None = None,
        fail_times: int = 0,
        garble: bool = False,
        max_retries: int = 2,
        name: str = "test",
    ) -> None:
        super().__init__(max_retries=max_retries)
        self.name = name
        self.prompts: list[list[Message]] = []
        self._handler = handler
        self._replies = list(replies) if replies is not None else None
        self._fail_left = fail_times
        self._garble = garble
        self._lock = threading.Lock()

    def _complete(
        self,
        messages: list[Message],
        *,
        json_schema: JSONSchema | None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        with self._lock:
            self.prompts.append(messages)
            failing = self._fail_left > 0
            self._fail_left -= int(failing)
        if failing:
            raise LLMError(f"{self.name}: simulated failure (fail_times)", retryable=True)
        text = self._reply(messages, json_schema)
        return Completion(
            text=text,
            prompt_tokens=sum(len(m["content"].split()) for m in messages),
            completion_tokens=len(text.split()),
            model=self.name,
            latency_s=0.0,
        )

    def _reply(self, messages: list[Message], json_schema: JSONSchema | None) -> str:
        if self._garble:
            return GARBLED
        if self._handler is not None:
            return self._handler(messages)
        if self._replies is not None:
            with self._lock:
                if not self._replies:
                    raise LLMError(f"{self.name}: no canned reply left", retryable=False)
                return self._replies.pop(0)
        return default_reply(messages, json_schema)


def default_reply(messages: list[Message], json_schema: JSONSchema | None) -> str:
    """Claims for an extraction prompt; else ``"{}"`` when JSON is asked, ``"OK."`` when not."""
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    lines = list(MESSAGE_LINE.finditer(last))
    if lines:
        claims = [c for line in lines if line["role"] == "user" for c in _line_claims(line)]
        return json.dumps({"claims": claims})
    return "{}" if json_schema is not None else TEXT_REPLY


def _line_claims(line: re.Match[str]) -> Iterator[dict[str, Any]]:
    said_on = date.fromisoformat(line["date"])
    for sentence in _SENTENCE.findall(line["text"]):
        sentence = sentence.strip()
        if sentence and not sentence.endswith("?"):
            claim = _sentence_claim(sentence, line["speaker"], said_on)
            if claim is not None:
                yield {**claim, "messages": [int(line["n"])]}


def _sentence_claim(sentence: str, name: str, said_on: date) -> dict[str, Any] | None:
    for rule in _RULES:
        match = rule.pattern.match(sentence)
        if match is not None:
            return _claim(rule, match, sentence, name, said_on)
    return None


def _claim(
    rule: _Rule, match: re.Match[str], sentence: str, name: str, said_on: date
) -> dict[str, Any]:
    groups = match.groupdict()
    attr = groups.get("attr") or ""
    attribute = rule.attribute.format(attr=_PREFERENCE.get(attr, attr))
    value = groups["value"].strip().rstrip(".!")
    when = said_on - timedelta(days=1) if "yesterday" in sentence.lower() else None
    relation = rule.relation.format(attr=attr) if rule.relation else None
    entities = [{"name": value, "type": rule.entity_type, "relation": relation}]
    return {
        "subject": name,
        "statement": _third_person(sentence, name, when),
        "attribute": attribute,
        "value": value,
        "kind": rule.kind,
        "valid_from": when.isoformat() if when else None,
        "ends": rule.ends,
        "entities": entities if rule.entity_type else [],
    }


def _third_person(sentence: str, name: str, when: date | None) -> str:
    text = re.sub(r"^I\b", name, sentence)
    text = re.sub(r"^My\b", f"{name}'s", text)
    text = re.sub(r"\bmy\b", f"{name}'s", text)
    if when is not None:
        text = re.sub(r"\byesterday\b", f"on {when.day} {when:%B %Y}", text, flags=re.IGNORECASE)
    return text.rstrip(".!") + "."
