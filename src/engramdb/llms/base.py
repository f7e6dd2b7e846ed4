"""The language-model protocol.

A provider implements one method, :meth:`LLM._complete` (one chat completion, transport retries
included); the base class checks the messages, counts usage, and for JSON answers parses the
reply tolerantly, checks its shape and asks again, saying what was wrong, when it is unusable.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import LLMError, shorten
from .parse import ReplyError, parse_reply

#: One chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``.
Message = dict[str, str]

_ROLES = frozenset({"system", "user", "assistant"})
#: How much of an unusable reply is quoted back to the model when asking again.
_ECHO_CHARS = 2000


@dataclass(frozen=True)
class JSONSchema:
    """The JSON an answer must be: a name (OpenAI's ``json_schema.name``) and the schema."""

    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Completion:
    """One reply of a model, with what it cost.

    Attributes:
        text: the reply's text.
        prompt_tokens: tokens read (the provider's count, else an estimate).
        completion_tokens: tokens written.
        model: the model that answered, as the provider names it.
        latency_s: seconds from request to reply, transport retries included.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    latency_s: float


@dataclass
class Usage:
    """What a model instance has cost so far; thread-safe. Read it, or ``reset()`` it.

    Attributes:
        calls: completions asked for (each retry for an unusable answer counts).
        prompt_tokens: tokens read, over all calls.
        completion_tokens: tokens written, over all calls.
        failures: calls that raised, plus answers that were unusable JSON.
        seconds: time spent waiting for the model.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, completion: Completion) -> None:
        """Count one answered call."""
        with self._lock:
            self.calls += 1
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens
            self.seconds += completion.latency_s

    def record_failure(self, seconds: float = 0.0, *, called: bool = True) -> None:
        """Count a call that raised (``called``) or an answer that was unusable (not called)."""
        with self._lock:
            self.calls += int(called)
            self.failures += 1
            self.seconds += seconds

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.calls = self.prompt_tokens = self.completion_tokens = self.failures = 0
            self.seconds = 0.0

    def as_dict(self) -> dict[str, float]:
        """A snapshot, for reports."""
        with self._lock:
            return {
                "calls": self.calls,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "failures": self.failures,
                "seconds": round(self.seconds, 3),
            }


class LLM(ABC):
    """A chat model that answers messages with text or with JSON of a given shape.

    Attributes:
        name: who answers, as ``resolve_llm`` names it (``"openai:gpt-4.1-mini"``).
        max_retries: how many times an unusable JSON answer is asked again (providers also use
            it for transient transport errors).
        usage: calls, tokens, failures and seconds so far.
    """

    name: str
    max_retries: int = 2
    usage: Usage

    def __init__(self, *, max_retries: int = 2) -> None:
        if max_retries < 0:
            raise LLMError(f"max_retries must be 0 or more, got {max_retries}", retryable=False)
        self.max_retries = max_retries
        self.usage = Usage()

    @abstractmethod
    def _complete(
        self,
        messages: list[Message],
        *,
        json_schema: JSONSchema | None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        """One completion (transport retries are the provider's); raises LLMError on failure."""

    def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        json_schema: JSONSchema | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> Completion:
        """One reply to a conversation, counted in :attr:`usage`.

        Raises:
            LLMError: the messages are malformed, or the provider failed.
        """
        checked = check_messages(messages)
        started = time.perf_counter()
        try:
            completion = self._complete(
                checked, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature
            )
        except LLMError:
            self.usage.record_failure(time.perf_counter() - started)
            raise
        self.usage.record(completion)
        return completion

    def complete_json(
        self,
        messages: Sequence[Mapping[str, str]],
        schema: Mapping[str, Any],
        *,
        name: str = "answer",
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> tuple[Any, Completion]:
        """A JSON answer of the schema's top-level shape, and the completion it came in.

        An unusable reply (no JSON, the wrong shape) is asked again up to ``max_retries`` times,
        with the reply and what was wrong with it, so the model can correct itself.

        Raises:
            LLMError: the provider failed, or no reply was usable after the retries
                (``retryable=True``: a later attempt may do better).
        """
        wanted = JSONSchema(name, schema)
        conversation = check_messages(messages)
        for _ in range(self.max_retries + 1):
            completion = self.complete(
                conversation, json_schema=wanted, max_tokens=max_tokens, temperature=temperature
            )
            try:
                return parse_reply(completion.text, schema), completion
            except ReplyError as exc:
                self.usage.record_failure(called=False)
                problem = str(exc)
                conversation = [*check_messages(messages), *_correction(completion.text, problem)]
        raise LLMError(
            f"model {self.name!r} gave no usable JSON in {self.max_retries + 1} attempt(s): "
            f"{problem}; its last reply was {shorten(completion.text, 200)}",
            retryable=True,
        )

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release connections (a no-op unless the provider holds any)."""


def check_messages(messages: Sequence[Mapping[str, str]]) -> list[Message]:
    """Plain ``{"role", "content"}`` dicts; LLMError (not retryable) on anything else."""
    if isinstance(messages, (str, bytes)) or not messages:
        raise LLMError("messages must be a non-empty list of {'role', 'content'}", retryable=False)
    out: list[Message] = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES or not isinstance(content, str):
            raise LLMError(
                f"message {i} must have a role in {sorted(_ROLES)} and a string content, "
                f"got {shorten(dict(message), 80)}",
                retryable=False,
            )
        out.append({"role": role, "content": content})
    return out


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate when the server reports none (about 4 chars a token)."""
    return max(1, (len(text) + 3) // 4) if text else 0


def _correction(reply: str, problem: str) -> list[Message]:
    return [
        {"role": "assistant", "content": reply[:_ECHO_CHARS]},
        {
            "role": "user",
            "content": (
                f"That reply could not be used: {problem}. Answer again with only the JSON "
                "object the instructions ask for: no prose, no code fences, no comments."
            ),
        },
    ]
