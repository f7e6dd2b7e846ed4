"""The LLM base class through the shipped TestLLM: usage, JSON repair retries, failures."""

from __future__ import annotations

import threading

import pytest

from engramdb import LLMError
from engramdb.llms import LLM, resolve_llm
from engramdb.llms.base import Message, estimate_tokens
from engramdb.llms.test import GARBLED, TestLLM
from engramdb.llms.test import TEXT_REPLY as OK

SCHEMA = {"type": "object", "properties": {"claims": {"type": "array"}}, "required": ["claims"]}
ASK: list[Message] = [{"role": "user", "content": "extract please"}]


def test_text_completion_counts_whitespace_tokens() -> None:
    llm = TestLLM()
    done = llm.complete([{"role": "system", "content": "be brief"}, *ASK])
    assert (done.text, done.prompt_tokens, done.completion_tokens) == (OK, 4, 1)
    assert done.model == "test"
    assert llm.usage.as_dict() == {
        "calls": 1,
        "prompt_tokens": 4,
        "completion_tokens": 1,
        "failures": 0,
        "seconds": 0.0,
    }
    llm.usage.reset()
    assert llm.usage.calls == llm.usage.prompt_tokens == 0


def test_handler_sees_the_messages() -> None:
    seen: list[list[Message]] = []

    def handler(messages: list[Message]) -> str:
        seen.append(messages)
        return '```json\n{"claims": [1]}\n```'

    answer, done = TestLLM(handler).complete_json(ASK, SCHEMA)
    assert answer == {"claims": [1]}
    assert seen == [ASK]
    assert done.text.startswith("```json")


def test_an_unusable_answer_is_asked_again_with_what_was_wrong() -> None:
    llm = TestLLM(replies=["Sure! Here are the facts.", '{"claims": ["x"]}'])
    answer, _ = llm.complete_json(ASK, SCHEMA)
    assert answer == {"claims": ["x"]}
    retry = llm.prompts[1]
    assert retry[:1] == ASK
    assert retry[1] == {"role": "assistant", "content": "Sure! Here are the facts."}
    assert "holds no JSON" in retry[2]["content"]
    assert (llm.usage.calls, llm.usage.failures) == (2, 1)


def test_the_wrong_shape_is_named_in_the_follow_up() -> None:
    llm = TestLLM(replies=['{"facts": []}', '{"claims": []}'])
    llm.complete_json(ASK, SCHEMA)
    assert "lacks the required key(s) 'claims'" in llm.prompts[1][2]["content"]


def test_garbled_output_fails_after_the_retries_naming_model_and_reply() -> None:
    llm = TestLLM(garble=True, max_retries=2, name="test-garbled")
    with pytest.raises(LLMError) as caught:
        llm.complete_json(ASK, SCHEMA)
    assert caught.value.retryable is True
    message = str(caught.value)
    assert "'test-garbled'" in message and "3 attempt(s)" in message
    assert GARBLED[:30] in message
    assert (llm.usage.calls, llm.usage.failures) == (3, 3)


def test_no_retries_means_one_attempt() -> None:
    llm = TestLLM(garble=True, max_retries=0)
    with pytest.raises(LLMError, match="1 attempt"):
        llm.complete_json(ASK, SCHEMA)
    assert len(llm.prompts) == 1


def test_fail_times_raises_retryable_errors_then_answers() -> None:
    llm = TestLLM(fail_times=2)
    for _ in range(2):
        with pytest.raises(LLMError, match="simulated failure") as caught:
            llm.complete(ASK)
        assert caught.value.retryable
    assert llm.complete(ASK).text == OK
    assert (llm.usage.calls, llm.usage.failures) == (3, 2)


def test_used_up_canned_replies_are_an_error_not_a_default() -> None:
    llm = TestLLM(replies=["one"])
    assert llm.complete(ASK).text == "one"
    with pytest.raises(LLMError, match="no canned reply left") as caught:
        llm.complete(ASK)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "messages",
    [[], "hello", [{"role": "robot", "content": "x"}], [{"role": "user", "content": 3}]],
)
def test_malformed_messages_are_refused(messages: object) -> None:
    with pytest.raises(LLMError, match="message") as caught:
        TestLLM().complete(messages)  # type: ignore[arg-type]
    assert caught.value.retryable is False


def test_negative_retries_are_refused() -> None:
    with pytest.raises(LLMError, match="max_retries"):
        TestLLM(max_retries=-1)


def test_json_asked_of_a_non_extraction_prompt_is_an_empty_object() -> None:
    answer, _ = TestLLM().complete_json(ASK, {"type": "object"})
    assert answer == {}


def test_usage_counts_exactly_under_threads() -> None:
    llm = TestLLM()

    def work() -> None:
        for _ in range(50):
            llm.complete(ASK)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert llm.usage.calls == 400
    assert llm.usage.prompt_tokens == 800


def test_token_estimate_is_about_four_characters_a_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("x" * 400) == 100


def test_resolve_test_gives_a_fresh_test_llm() -> None:
    llm = resolve_llm("test")
    assert isinstance(llm, LLM) and llm.name == "test"
    assert resolve_llm("test") is not llm
