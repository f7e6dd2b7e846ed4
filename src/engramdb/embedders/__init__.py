"""Embedding models behind one small protocol, selected by name or passed as an instance.

Names: ``"local"`` (the bundled model), ``"openai:<model>"`` (any OpenAI-compatible endpoint),
``"test"`` / ``"test:<dim>"`` (deterministic, no model).
"""

from __future__ import annotations

from ..errors import EmbedderError
from .base import Embedder, normalize

__all__ = ["Embedder", "normalize", "resolve_embedder"]

_FORMS = "'local', 'openai:<model>' (e.g. 'openai:text-embedding-3-small'), 'test' or 'test:<dim>'"


#: Largest dimension of the test embedder (real models have a few hundred to a few thousand).
_MAX_TEST_DIM = 4096


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder from a name, or the instance itself.

    Raises:
        EmbedderError: an unknown name, or neither a name nor an Embedder.
    """
    if isinstance(spec, Embedder):
        return spec
    if spec is not None and not isinstance(spec, str):
        raise EmbedderError(
            f"embedder must be a name ({_FORMS}) or an Embedder instance, got {type(spec).__name__}"
        )
    name = (spec or "local").strip()
    kind, _, arg = name.partition(":")
    if kind == "local":
        from .local import LocalEmbedder

        if arg and arg not in ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8pc"):
            raise EmbedderError(f"unknown local model {arg!r}: use 'local'")
        return LocalEmbedder()
    if kind == "test":
        from .test import TestEmbedder

        if arg and not (arg.isascii() and arg.isdigit() and 1 <= int(arg) <= _MAX_TEST_DIM):
            raise EmbedderError(
                f"embedder {name!r}: the test embedder takes a dimension from 1 to "
                f"{_MAX_TEST_DIM}, e.g. 'test:64'"
            )
        return TestEmbedder(int(arg) if arg else 64)
    if kind == "openai" and arg:
        from .openai import OpenAIEmbedder

        return OpenAIEmbedder(arg)
    raise EmbedderError(f"unknown embedder {name!r}: use {_FORMS}, or pass an Embedder instance")
