"""Chat completions from any OpenAI-compatible ``/v1/chat/completions`` endpoint.

OpenAI, Azure OpenAI (through its v1-compatible route), OpenRouter, Ollama, vLLM, the llama.cpp
server, llama-cpp-python's server and LM Studio all speak it. Servers differ in structured
output: the first JSON request sends ``response_format={"type": "json_schema", ...}``; a server
that refuses it gets ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's form), then
``{"type": "json_object"}``, then no ``response_format`` at all (the prompt still describes the
JSON, and the base class parses tolerantly). The instance remembers what worked.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import LLMError
from .base import LLM, Completion, JSONSchema, Message, estimate_tokens

if TYPE_CHECKING:
    import httpx

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: Structured-output modes, most precise first. "json_object+schema" is llama-cpp-python's
#: dialect (a grammar built from the schema), which refuses "json_schema".
_FORMATS = ("json_schema", "json_object+schema", "json_object", "none")
#: Statuses a server refuses a response_format with (llama-cpp-python answers 500).
_FORMAT_STATUS = frozenset({400, 415, 422, 500, 501})
#: Longest wait a Retry-After header may impose before the next attempt.
_MAX_RETRY_AFTER = 60.0
_MAX_BACKOFF = 30.0


class RateLimiter:
    """A thread-safe token bucket: at most ``per_minute`` acquisitions a minute, ``burst`` at once.

    Each caller reserves a slot under the lock and sleeps outside it, so waiting threads queue in
    order instead of racing.
    """

    def __init__(self, per_minute: float, *, burst: int = 1) -> None:
        if per_minute <= 0 or burst < 1:
            raise LLMError("rate_limit_per_minute must be positive", retryable=False)
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            self._tokens -= 1.0
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        return wait


class OpenAILLM(LLM):
    """Calls ``POST {base_url}/chat/completions``.

    Args:
        model: the endpoint's model name (``gpt-4.1-mini``, ``qwen2.5:7b``, a server's alias).
        base_url: default ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
        api_key: default ``OPENAI_API_KEY`` (local servers usually need none).
        timeout: seconds for one request (connecting takes at most 10 of them).
        max_retries: attempts after the first on 429, 5xx and timeouts (and on unusable JSON).
        rate_limit_per_minute: at most this many requests a minute from this instance.
        backoff: seconds before the first retry; doubles each attempt, with jitter.
        prefix: the provider part of :attr:`name` (``"ollama"`` gives ``"ollama:<model>"``).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        rate_limit_per_minute: float | None = None,
        backoff: float = 0.5,
        prefix: str = "openai",
    ) -> None:
        super().__init__(max_retries=max_retries)
        try:
            import httpx
        except ImportError as exc:
            raise LLMError(
                "the openai LLM provider needs httpx: pip install 'engramdb[llm]'", retryable=False
            ) from exc
        self.model = model
        self.base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        ).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), headers=headers
        )
        self._limiter = RateLimiter(rate_limit_per_minute) if rate_limit_per_minute else None
        self._backoff = backoff
        self._format = 0  # index into _FORMATS: what this server accepted last
        self.name = f"{prefix}:{model}"

    @property
    def structured_output(self) -> str:
        """The ``response_format`` type this server accepts, as far as it has shown so far."""
        return _FORMATS[self._format]

    def close(self) -> None:
        self._client.close()

    def _complete(
        self,
        messages: list[Message],
        *,
        json_schema: JSONSchema | None,
        max_tokens: int,
        temperature: float,
    ) -> Completion:
        started = time.perf_counter()
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        body = self._post_structured(payload, json_schema)
        return self._completion(body, messages, time.perf_counter() - started)

    def _post_structured(self, payload: dict[str, Any], schema: JSONSchema | None) -> Any:
        """Post, stepping down the structured-output modes while the server refuses them."""
        while True:
            mode = self._format
            fmt = _response_format(_FORMATS[mode], schema) if schema else None
            request = {**payload, "response_format": fmt} if fmt else payload
            try:
                return self._post(request)
            except _FormatRefused:
                # Never past "none": a request without a format has none to refuse.
                self._format = max(self._format, mode + 1)

    def _post(self, payload: dict[str, Any]) -> Any:
        import httpx

        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            if self._limiter is not None:
                self._limiter.acquire()
            try:
                response = self._client.post(url, json=payload)
            except httpx.TransportError as exc:
                if last:
                    raise LLMError(self._unreachable(url, exc), retryable=True) from exc
                delay = self._delay(attempt)
            else:
                if response.status_code < 400:
                    return _json(response, url)
                self._refuse(response, payload, url, last)
                wait = _retry_after(response)
                delay = self._delay(attempt) if wait is None else wait
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _refuse(
        self, response: httpx.Response, payload: dict[str, Any], url: str, last: bool
    ) -> None:
        """Raise for an error answer, unless it is worth another attempt."""
        status, text = response.status_code, response.text
        if status in _FORMAT_STATUS and "response_format" in payload and _mentions_format(text):
            raise _FormatRefused
        if status in _RETRY_STATUS and not last:
            return
        raise LLMError(self._explain(status, text, url), retryable=status in _RETRY_STATUS)

    def _explain(self, status: int, text: str, url: str) -> str:
        said = f"{url} answered {status}: {text[:300]}"
        if status in (401, 403):
            return f"{said} — check the API key (api_key= or OPENAI_API_KEY) and its permissions"
        if status == 404:
            return (
                f"{said} — check the model name {self.model!r} and the base_url "
                f"{self.base_url!r} (it usually ends in /v1)"
            )
        if status in _RETRY_STATUS:
            return f"{said} — still failing after {self.max_retries + 1} attempt(s); try later"
        return f"{said} — the server refused the request: check the model name and settings"

    def _unreachable(self, url: str, exc: Exception) -> str:
        kind = type(exc).__name__
        return (
            f"cannot reach {url} ({kind}: {exc}) after {self.max_retries + 1} attempt(s): check "
            "that the server runs and the base_url, or raise the timeout for a slow local model"
        )

    def _delay(self, attempt: int) -> float:
        # Jitter: concurrent clients that failed together do not retry together.
        ceiling = min(self._backoff * 2.0**attempt, _MAX_BACKOFF)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _completion(self, body: Any, messages: list[Message], seconds: float) -> Completion:
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"{self.name} answered in an unexpected shape: {str(body)[:200]}"
            ) from exc
        text = text if isinstance(text, str) else ""  # a refusal or a tool call carries none
        usage = body.get("usage") if isinstance(body, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        prompt = usage.get("prompt_tokens")
        written = usage.get("completion_tokens")
        return Completion(
            text=text,
            prompt_tokens=prompt if isinstance(prompt, int) else _prompt_estimate(messages),
            completion_tokens=written if isinstance(written, int) else estimate_tokens(text),
            model=str(body.get("model") or self.model),
            latency_s=seconds,
        )


class _FormatRefused(Exception):
    """The server refused the ``response_format`` it was sent."""


def _response_format(mode: str, schema: JSONSchema) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": dict(schema.schema)},
        }
    if mode == "json_object+schema":
        return {"type": "json_object", "schema": dict(schema.schema)}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def _mentions_format(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in ("response_format", "json_schema", "json_object"))


def _retry_after(response: httpx.Response) -> float | None:
    """The server's Retry-After, in seconds (a number or an HTTP date), capped."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise LLMError(
            f"{url} answered with something that is not JSON: {response.text[:200]}"
        ) from exc


def _prompt_estimate(messages: list[Message]) -> int:
    return sum(estimate_tokens(m["content"]) + 4 for m in messages)  # ~4 tokens of framing each
