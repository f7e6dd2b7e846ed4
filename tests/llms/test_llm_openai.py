"""OpenAILLM against a real local HTTP server whose answers each test scripts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from engramdb import LLMError
from engramdb.llms import resolve_llm
from engramdb.llms.openai import OpenAILLM, RateLimiter

SCHEMA = {"type": "object", "properties": {"claims": {"type": "array"}}, "required": ["claims"]}
ASK = [{"role": "user", "content": "Answer in JSON, please."}]


@dataclass
class Reply:
    """One scripted answer of the server."""

    status: int = 200
    content: str = '{"claims": []}'
    body: Any = None  # the whole JSON body, instead of a completion around ``content``
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: bool = True


class _Handler(BaseHTTPRequestHandler):
    script: ClassVar[list[Reply]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        reply = type(self).script.pop(0) if type(self).script else Reply()
        time.sleep(reply.delay)
        payload = reply.body if reply.body is not None else _completion(reply, body)
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except OSError:  # the client gave up (a timeout test)
            pass

    def log_message(self, *args: object) -> None:
        pass


def _completion(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    if reply.status >= 400:
        return {"error": {"message": reply.content}}
    out: dict[str, Any] = {
        "model": request["model"] + "-2024",
        "choices": [{"message": {"role": "assistant", "content": reply.content}}],
    }
    if reply.usage:
        out["usage"] = {"prompt_tokens": 11, "completion_tokens": 7}
    return out


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    _Handler.script, _Handler.seen = [], []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _llm(url: str, **kwargs: Any) -> OpenAILLM:
    kwargs.setdefault("backoff", 0.01)
    return OpenAILLM("m", base_url=url, api_key="k", **kwargs)


def test_a_completion_reads_text_usage_and_model(server: str) -> None:
    llm = _llm(server)
    _Handler.script = [Reply(content="Hello there")]
    done = llm.complete(ASK, max_tokens=50, temperature=0.2)
    assert (done.text, done.prompt_tokens, done.completion_tokens) == ("Hello there", 11, 7)
    assert done.model == "m-2024" and done.latency_s > 0
    request = _Handler.seen[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer k"
    assert request["body"] == {"model": "m", "messages": ASK, "max_tokens": 50, "temperature": 0.2}
    assert llm.name == "openai:m"
    assert llm.usage.as_dict()["prompt_tokens"] == 11


def test_without_usage_tokens_are_estimated(server: str) -> None:
    _Handler.script = [Reply(content="x" * 40, usage=False)]
    done = _llm(server).complete(ASK)
    assert done.completion_tokens == 10
    assert done.prompt_tokens == 6 + 4  # 23 characters, and the framing of one message


def test_json_is_asked_with_the_schema_first(server: str) -> None:
    answer, _ = _llm(server).complete_json(ASK, SCHEMA, name="claims")
    assert answer == {"claims": []}
    assert _Handler.seen[0]["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "claims", "schema": SCHEMA},
    }


@pytest.mark.parametrize("status", [400, 422, 500])
def test_a_refused_schema_falls_back_and_what_worked_is_remembered(
    server: str, status: int
) -> None:
    llm = _llm(server)
    # llama-cpp-python refuses "json_schema" with a 500 naming the field.
    _Handler.script = [Reply(status, "response_format.type: input should be 'json_object'")]
    llm.complete_json(ASK, SCHEMA)
    llm.complete_json(ASK, SCHEMA)
    formats = [seen["body"].get("response_format") for seen in _Handler.seen]
    assert formats[0]["type"] == "json_schema"
    assert formats[1] == formats[2] == {"type": "json_object", "schema": SCHEMA}
    assert llm.structured_output == "json_object+schema"


def test_a_server_refusing_every_format_gets_none(server: str) -> None:
    llm = _llm(server)
    _Handler.script = [
        Reply(422, "unknown field: response_format"),
        Reply(400, "response_format: unknown key schema"),
        Reply(400, "response_format json_object unsupported"),
    ]
    llm.complete_json(ASK, SCHEMA)
    formats = [seen["body"].get("response_format") for seen in _Handler.seen]
    assert formats == [
        {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}},
        {"type": "json_object", "schema": SCHEMA},
        {"type": "json_object"},
        None,
    ]
    assert llm.structured_output == "none"


def test_a_server_error_not_about_the_format_is_not_a_fallback(server: str) -> None:
    _Handler.script = [Reply(500, "out of memory")] * 2
    with pytest.raises(LLMError, match="out of memory"):
        _llm(server, max_retries=1).complete_json(ASK, SCHEMA)
    assert all("json_schema" in str(seen["body"]["response_format"]) for seen in _Handler.seen)


def test_unusable_json_is_asked_again_through_the_server(server: str) -> None:
    _Handler.script = [Reply(content="I think the answer is yes"), Reply(content='{"claims": [1]}')]
    answer, _ = _llm(server).complete_json(ASK, SCHEMA)
    assert answer == {"claims": [1]}
    follow_up = _Handler.seen[1]["body"]["messages"]
    assert follow_up[1]["content"] == "I think the answer is yes"
    assert "could not be used" in follow_up[2]["content"]


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_errors_are_retried(server: str, status: int) -> None:
    _Handler.script = [Reply(status, "busy"), Reply(content="fine")]
    assert _llm(server, max_retries=1).complete(ASK).text == "fine"
    assert len(_Handler.seen) == 2


def test_retry_after_is_honoured(server: str) -> None:
    _Handler.script = [Reply(429, "slow down", headers={"Retry-After": "0.4"})]
    started = time.perf_counter()
    # A backoff of 5 s would show if the header were ignored.
    _llm(server, backoff=5.0).complete(ASK)
    assert 0.4 <= time.perf_counter() - started < 2.0


def test_transient_errors_that_persist_are_retryable_failures(server: str) -> None:
    llm = _llm(server, max_retries=2)
    _Handler.script = [Reply(503, "overloaded")] * 3
    with pytest.raises(LLMError, match=r"503.*overloaded.*3 attempt") as caught:
        llm.complete(ASK)
    assert caught.value.retryable is True
    assert len(_Handler.seen) == 3
    assert (llm.usage.calls, llm.usage.failures) == (1, 1)


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (401, "check the API key"),
        (403, "check the API key"),
        (404, "check the model name 'm' and the base_url"),
        (400, "the server refused the request"),
    ],
)
def test_permanent_errors_are_not_retried_and_say_what_to_check(
    server: str, status: int, advice: str
) -> None:
    _Handler.script = [Reply(status, "nope")]
    with pytest.raises(LLMError, match=advice) as caught:
        _llm(server, max_retries=3).complete_json(ASK, SCHEMA)
    assert caught.value.retryable is False
    assert "nope" in str(caught.value)
    assert len(_Handler.seen) == 1


def test_a_slow_server_times_out_and_is_retried(server: str) -> None:
    _Handler.script = [Reply(delay=1.0), Reply(delay=1.0)]
    with pytest.raises(LLMError, match=r"ReadTimeout.*2 attempt") as caught:
        _llm(server, timeout=0.2, max_retries=1).complete(ASK)
    assert caught.value.retryable is True


def test_an_unreachable_server_is_a_clear_error() -> None:
    llm = OpenAILLM("m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(LLMError, match=r"cannot reach .* check that the server runs"):
        llm.complete(ASK)


@pytest.mark.parametrize("body", [b"<html>oops</html>", {"choices": []}, {"error": "?"}])
def test_answers_of_the_wrong_shape_are_errors(server: str, body: Any) -> None:
    _Handler.script = [Reply(body=body)]
    with pytest.raises(LLMError, match=r"not JSON|unexpected shape"):
        _llm(server).complete(ASK)


def test_rate_limit_spaces_requests(server: str) -> None:
    llm = _llm(server, rate_limit_per_minute=600)  # one every 0.1 s
    started = time.perf_counter()
    for _ in range(4):
        llm.complete(ASK)
    assert time.perf_counter() - started >= 0.3


def test_rate_limiter_is_shared_fairly_between_threads() -> None:
    limiter = RateLimiter(1200)  # one every 0.05 s
    started = time.perf_counter()
    threads = [threading.Thread(target=limiter.acquire) for _ in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.perf_counter() - started >= 0.4  # the first is free, eight wait their turn


def test_rate_limit_must_be_positive() -> None:
    with pytest.raises(LLMError, match="positive"):
        RateLimiter(0)


def test_environment_gives_base_url_and_key(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server + "/")
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    llm = resolve_llm("openai:gpt-4.1-mini")
    assert llm is not None and llm.name == "openai:gpt-4.1-mini"
    llm.complete(ASK)
    assert _Handler.seen[0]["auth"] == "Bearer from-env"
    assert _Handler.seen[0]["body"]["model"] == "gpt-4.1-mini"


def test_local_servers_get_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "secret")
    ollama = resolve_llm("ollama:qwen2.5:7b")
    assert isinstance(ollama, OpenAILLM)
    assert (ollama.name, ollama.model) == ("ollama:qwen2.5:7b", "qwen2.5:7b")
    assert ollama.base_url == "http://localhost:11434/v1"
    assert "authorization" not in ollama._client.headers
    server = resolve_llm("local-server:qwen")
    assert isinstance(server, OpenAILLM) and server.base_url == "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize("name", ["gpt-4", "openai:", "ollama", "test:x", "anthropic:claude"])
def test_unknown_names_list_the_accepted_forms(name: str) -> None:
    with pytest.raises(LLMError, match=r"'openai:<model>'.*'ollama:<model>'.*'test'") as caught:
        resolve_llm(name)
    assert caught.value.retryable is False


def test_none_is_no_llm_and_instances_pass_through() -> None:
    assert resolve_llm(None) is None
    llm = OpenAILLM("m", base_url="http://127.0.0.1:9/v1")
    assert resolve_llm(llm) is llm
    with pytest.raises(LLMError, match="LLM instance"):
        resolve_llm(42)  # type: ignore[arg-type]
