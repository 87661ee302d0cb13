"""all-MiniLM-L6-v2 through CTranslate2 in int8: the default embedder on a CPU.

CTranslate2 stores each weight matrix in int8 per output row and quantises each token's
activations at run time, with no calibration; its int8 GEMMs (oneDNN) and fused encoder layers
run ~3x the PyTorch model on one core.

Texts with fewer than ``FLOAT_UNDER_DISTINCT_TOKENS`` distinct tokens run through the float32
conversion instead. A vector is the mean of its tokens' states, so int8 rounding noise averages
out over many different tokens but not over a few words or a run of one token: a line of
table-of-contents dots fell to cosine 0.980 of PyTorch's vector, four-word chunks to 0.988, and
int8 weights alone (dequantised) kept the dots at 0.987, so the fallback is the float32 model
itself (cosine 1.0). Those texts are ~6 % of the corpus's chunks and ~3 % of its tokens.

Both models are converted once from the packaged PyTorch weights (``docmill.embeddings.export``,
run by ``scripts/install.sh`` or on first use) into a cache folder. Tokenisation, masked mean
pooling and normalisation match the ONNX embedder (``docmill.embeddings.onnx``); no torch in
the process.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from docmill.embeddings.base import Embedder
from docmill.embeddings.local import MODEL_ID
from docmill.embeddings.onnx import load_tokenizer
from docmill.errors import EmbeddingError

FLOAT_UNDER_DISTINCT_TOKENS = 24  # [CLS] and [SEP] included


class CTranslate2Embedder(Embedder):
    model_id = MODEL_ID
    dimension = 384

    _shared: ClassVar[dict[tuple, CTranslate2Embedder]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, model_path: Path, float_model_path: Path, model_dir: Path, *, batch_size: int = 1, threads: int | None = None
    ) -> None:
        try:
            import ctranslate2
            import numpy  # noqa: F401
            import tokenizers  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingError("the CTranslate2 embedder needs ctranslate2 and tokenizers (the 'processing' extra)") from exc
        self._ct2 = ctranslate2
        self.model_path = Path(model_path)
        self.float_model_path = Path(float_model_path)
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self._tokenizer = load_tokenizer(model_dir)
        self._lock = threading.Lock()
        self._threads = threads or 0
        # Opened on first use and never before a fork: an encoder owns a thread pool, which a
        # forked ingest worker would not inherit. One per model ("int8", "float32").
        self._encoders: dict[str, Any] = {}

    def _encoder(self, compute_type: str):  # noqa: ANN202 - ctranslate2.Encoder
        if compute_type not in self._encoders:
            self._encoders[compute_type] = self._open(compute_type, self._threads)
        return self._encoders[compute_type]

    def _open(self, compute_type: str, threads: int):  # noqa: ANN202 - ctranslate2.Encoder
        path = self.model_path if compute_type == "int8" else self.float_model_path
        try:
            return self._ct2.Encoder(
                str(path),
                device="cpu",
                compute_type=compute_type,
                inter_threads=1,
                intra_threads=threads or len(os.sched_getaffinity(0)),
            )
        except Exception as exc:
            raise EmbeddingError(f"cannot load the CTranslate2 model {path}: {exc}") from exc

    @classmethod
    def shared(cls, model_path: Path, float_model_path: Path, model_dir: Path, **kwargs: Any) -> CTranslate2Embedder:
        """One embedder per process and settings."""
        key = (str(model_path), str(float_model_path), str(model_dir), *sorted(kwargs.items()))
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(model_path, float_model_path, model_dir, **kwargs)
            return cls._shared[key]

    def set_threads(self, threads: int) -> None:
        with self._lock:
            if threads != self._threads:
                self._encoders = {}
                self._threads = threads

    def worker_factory(self) -> Callable[[], Embedder]:
        return functools.partial(
            CTranslate2Embedder.shared,
            self.model_path,
            self.float_model_path,
            self.model_dir,
            batch_size=self.batch_size,
            threads=1,
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        if not texts:
            return []
        ids = [e.ids[: sum(e.attention_mask)] for e in self._tokenizer.encode_batch(list(texts))]
        # Longest first, in small batches: each batch is padded to its longest text.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        few = {i for i in order if len(set(ids[i])) < FLOAT_UNDER_DISTINCT_TOKENS}
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            for compute_type, group in (
                ("int8", [i for i in order if i not in few]),
                ("float32", [i for i in order if i in few]),
            ):
                for start in range(0, len(group), self.batch_size):
                    idx = group[start : start + self.batch_size]
                    out[idx] = self._pooled(self._encoder(compute_type), [ids[i] for i in idx])
        return out.tolist()

    @staticmethod
    def _pooled(encoder: Any, batch: list[list[int]]) -> Any:  # numpy rows
        import numpy as np

        hidden = np.asarray(encoder.forward_batch(batch).last_hidden_state)
        lengths = np.array([len(row) for row in batch])
        mask = (np.arange(hidden.shape[1])[None, :] < lengths[:, None]).astype(np.float32)[..., None]
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
