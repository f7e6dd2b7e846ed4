"""Language models behind one small protocol, selected by name or passed as an instance.

Names: ``"openai:<model>"`` (OpenAI, or any OpenAI-compatible endpoint through
``OPENAI_BASE_URL``), ``"ollama:<model>"`` (a local Ollama), ``"llamacpp:<alias>"`` (a local
llama.cpp server), ``"test"`` (deterministic, no model). No model at all (None) means the
rule-based paths.
"""

from __future__ import annotations

from ..errors import LLMError
from .base import LLM, Completion, JSONSchema, Message, Usage

__all__ = ["LLM", "Completion", "JSONSchema", "Message", "Usage", "resolve_llm"]

_FORMS = (
    "'openai:<model>' (e.g. 'openai:gpt-4.1-mini'), 'ollama:<model>' (e.g. 'ollama:qwen2.5:7b'), "
    "'llamacpp:<alias>' or 'local-server:<alias>', or 'test'"
)
#: Where the local servers listen by default (no key needed).
OLLAMA_URL = "http://localhost:11434/v1"
LLAMACPP_URL = "http://127.0.0.1:8080/v1"


def resolve_llm(spec: str | LLM | None) -> LLM | None:
    """A language model from a name, the instance itself, or None for none.

    Raises:
        LLMError: an unknown name, or neither a name nor an LLM (``retryable=False``).
    """
    if spec is None or isinstance(spec, LLM):
        return spec
    if not isinstance(spec, str):
        raise LLMError(
            f"llm must be a name ({_FORMS}) or an LLM instance, got {type(spec).__name__}",
            retryable=False,
        )
    name = spec.strip()
    kind, _, model = name.partition(":")
    if kind == "test" and not model:
        from .test import TestLLM

        return TestLLM()
    if kind in ("openai", "ollama", "llamacpp", "local-server") and model:
        return _openai_compatible(kind, model)
    raise LLMError(f"unknown llm {name!r}: use {_FORMS}, or pass an LLM instance", retryable=False)


def _openai_compatible(kind: str, model: str) -> LLM:
    from .openai import OpenAILLM

    if kind == "openai":
        return OpenAILLM(model)
    # Local servers need no key; an empty one keeps OPENAI_API_KEY from leaking to them.
    url = OLLAMA_URL if kind == "ollama" else LLAMACPP_URL
    return OpenAILLM(model, base_url=url, api_key="", prefix=kind)
