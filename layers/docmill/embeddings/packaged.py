"""What the embedders that run the packaged MiniLM without torch share (ONNX Runtime,
CTranslate2): its tokenizer, one instance per process and settings, a thread count that reopens
the model, a worker factory, and the sentence-transformers pooling (attention-masked mean, then
L2 normalisation), so their vectors match the PyTorch model's."""

from __future__ import annotations

import functools
import json
import threading
from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from docmill.embeddings.base import Embedder
from docmill.embeddings.local import MODEL_ID
from docmill.errors import EmbeddingError


class PackagedModelEmbedder(Embedder):
    """A converted copy of the packaged MiniLM (``model_paths``) and its tokenizer (``model_dir``)."""

    model_id = MODEL_ID
    dimension = 384

    _shared: ClassVar[dict[tuple, PackagedModelEmbedder]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_dir: Path, *, batch_size: int = 1, threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self._tokenizer = load_tokenizer(self.model_dir)
        self._lock = threading.Lock()
        self._threads = threads or 0  # 0 = one per core

    @property
    @abstractmethod
    def model_paths(self) -> tuple[Path, ...]:
        """The converted model files or folders, as the constructor takes them before ``model_dir``."""

    @abstractmethod
    def _close_models(self) -> None:
        """Drop open sessions or encoders; the next call opens them with the current thread count."""

    @classmethod
    def shared(cls, *paths: Path, **kwargs: Any) -> PackagedModelEmbedder:
        """One instance per process, class and settings: loading costs seconds, reuse nothing."""
        key = (cls, *map(str, paths), *sorted(kwargs.items()))
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(*paths, **kwargs)
            return cls._shared[key]

    def set_threads(self, threads: int) -> None:
        with self._lock:
            if threads != self._threads:
                self._close_models()
                self._threads = threads

    def worker_factory(self) -> Callable[[], Embedder]:
        return functools.partial(
            type(self).shared, *self.model_paths, self.model_dir, batch_size=self.batch_size, threads=1
        )

    @staticmethod
    def _runtime(module: str, name: str) -> Any:
        """The runtime's module, or a clear error when the install lacks it."""
        import importlib

        try:
            import numpy  # noqa: F401
            import tokenizers  # noqa: F401

            return importlib.import_module(module)
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingError(f"the {name} embedder needs {module} and tokenizers (the 'processing' extra)") from exc

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, truncated to the model's window, without padding."""
        return [e.ids[: sum(e.attention_mask)] for e in self._tokenizer.encode_batch(list(texts))]


def load_tokenizer(model_dir: Path) -> Any:  # tokenizers.Tokenizer
    """The packaged tokenizer, truncating at the model's window and padding a batch to its longest."""
    from tokenizers import Tokenizer

    max_len = int(json.loads((model_dir / "sentence_bert_config.json").read_text()).get("max_seq_length", 256))
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
    return tokenizer


def mean_pooled(hidden: Any, mask: Any) -> Any:  # numpy (rows, tokens, dim), (rows, tokens) -> (rows, dim)
    """The sentence-transformers pooling: the mean of the unmasked token states, L2-normalised."""
    import numpy as np

    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
