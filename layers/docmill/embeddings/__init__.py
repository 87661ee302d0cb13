from typing import Any

from docmill.embeddings.base import Embedder
from docmill.errors import ConfigurationError

__all__ = ["Embedder", "get_embedder", "model_id_for"]

_MINILM_NAMES = ("minilm", "local", "all-MiniLM-L6-v2")


def model_id_for(name: str) -> str:
    """The model id an embedder name resolves to, without loading the model."""
    if name in _MINILM_NAMES:
        from docmill.embeddings.local import MODEL_ID

        return MODEL_ID
    raise ConfigurationError(f"unknown embedder {name!r}: use 'minilm' (other back ends plug in as Embedder subclasses)")


def get_embedder(name: str = "minilm", **kwargs: Any) -> Embedder:
    """Resolve an embedder by name; heavy imports happen only for the one asked for."""
    model_id_for(name)  # validates the name
    from docmill.embeddings.local import LocalEmbedder

    return LocalEmbedder.shared(**kwargs)
