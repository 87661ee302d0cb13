from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from docmill.embeddings.base import Embedder
from docmill.errors import ConfigurationError

if TYPE_CHECKING:
    from docmill.config import Settings

__all__ = ["RUNTIMES", "Embedder", "embedder_for", "get_embedder", "model_id_for"]

_MINILM_NAMES = ("minilm", "local", "all-MiniLM-L6-v2")
RUNTIMES = ("ctranslate2-int8", "onnx", "onnx-int8", "torch")


def model_id_for(name: str) -> str:
    """The model id an embedder name resolves to, without loading the model."""
    if name in _MINILM_NAMES:
        from docmill.embeddings.local import MODEL_ID

        return MODEL_ID
    raise ConfigurationError(f"unknown embedder {name!r}: use 'minilm' (other back ends plug in as Embedder subclasses)")


def get_embedder(
    name: str = "minilm", *, runtime: str = "torch", cache_dir: Path | None = None, **kwargs: Any
) -> Embedder:
    """Resolve an embedder by name and runtime; heavy imports happen only for the one asked for.

    ``runtime`` "ctranslate2-int8", "onnx" (float32) and "onnx-int8" need ``cache_dir`` (where
    the exported model lives, exported there on first use); "torch" loads the PyTorch model.
    """
    model_id_for(name)  # validates the name
    if runtime == "torch":
        from docmill.embeddings.local import LocalEmbedder

        return LocalEmbedder.shared(**kwargs)
    if runtime not in RUNTIMES:
        raise ConfigurationError(f"unknown embedding runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if cache_dir is None:
        raise ConfigurationError(f"the {runtime} embedder needs a model cache folder")
    from docmill.embeddings.export import ensure_ct2_model, ensure_onnx_model, packaged_model_dir

    if runtime == "ctranslate2-int8":
        from docmill.embeddings.ct2 import CTranslate2Embedder

        return CTranslate2Embedder.shared(
            ensure_ct2_model(cache_dir), ensure_ct2_model(cache_dir, "float32"), packaged_model_dir(), **kwargs
        )
    from docmill.embeddings.onnx import OnnxEmbedder

    model_file = ensure_onnx_model(cache_dir, int8=runtime == "onnx-int8")
    return OnnxEmbedder.shared(model_file, packaged_model_dir(), **kwargs)


def embedder_for(settings: Settings, **kwargs: Any) -> Embedder:
    """The embedder the settings name, on the runtime they choose."""
    return get_embedder(settings.embedder, runtime=settings.embed_runtime, cache_dir=settings.model_cache, **kwargs)
