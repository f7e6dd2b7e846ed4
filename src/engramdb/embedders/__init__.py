"""Embedding models behind one small protocol, selected by name or passed as an instance.

Names: ``"local"`` (the bundled model), ``"openai:<model>"`` (any OpenAI-compatible endpoint),
``"test"`` / ``"test:<dim>"`` (deterministic, no model).
"""

from __future__ import annotations

from ..errors import EmbedderError
from .base import Embedder, normalize

__all__ = ["Embedder", "normalize", "resolve_embedder"]

_FORMS = "'local', 'openai:<model>' (e.g. 'openai:text-embedding-3-small'), 'test' or 'test:<dim>'"


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder from a name, or the instance itself.

    Raises:
        EmbedderError: an unknown name.
    """
    if isinstance(spec, Embedder):
        return spec
    name = (spec or "local").strip()
    kind, _, arg = name.partition(":")
    if kind == "local":
        from .local import LocalEmbedder

        if arg and arg not in ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8pc"):
            raise EmbedderError(f"unknown local model {arg!r}: use 'local'")
        return LocalEmbedder()
    if kind == "test":
        from .test import TestEmbedder

        if arg and not arg.isdigit():
            raise EmbedderError(
                f"embedder {name!r}: the test embedder takes a dimension, 'test:64'"
            )
        return TestEmbedder(int(arg) if arg else 64)
    if kind == "openai" and arg:
        from .openai import OpenAIEmbedder

        return OpenAIEmbedder(arg)
    raise EmbedderError(f"unknown embedder {name!r}: use {_FORMS}, or pass an Embedder instance")
