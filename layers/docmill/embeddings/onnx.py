"""all-MiniLM-L6-v2 through ONNX Runtime: no torch in the process, so a cold start is fast.

The ONNX graph is exported once from the packaged PyTorch weights (``docmill.embeddings.export``,
run by ``scripts/install.sh`` or on first use) into a cache folder. Tokenisation uses the
packaged ``tokenizer.json`` through ``tokenizers`` directly; pooling (attention-masked mean)
and L2 normalisation are the sentence-transformers recipe, so vectors match the PyTorch model.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from docmill.embeddings.base import Embedder
from docmill.embeddings.local import MODEL_ID
from docmill.errors import EmbeddingError


class OnnxEmbedder(Embedder):
    model_id = MODEL_ID
    dimension = 384

    _shared: ClassVar[dict[tuple, OnnxEmbedder]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_file: Path, model_dir: Path, *, batch_size: int = 1, threads: int | None = None) -> None:
        try:
            import numpy  # noqa: F401
            import onnxruntime
            import tokenizers  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingError("the ONNX embedder needs onnxruntime and tokenizers (the 'processing' extra)") from exc
        self._ort = onnxruntime
        self.model_file = Path(model_file)
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self._tokenizer = load_tokenizer(model_dir)
        self._lock = threading.Lock()
        self._threads = threads or 0
        # Opened on first use: an ingest parent that hands embedding to its workers never needs it.
        self._session: Any = None

    def _open(self, threads: int):  # noqa: ANN202 - onnxruntime.InferenceSession
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0 = one per core
        opts.inter_op_num_threads = 1
        # Spinning threads burn the cores that partition workers need while the embedder waits.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # A memory pattern is planned and kept per input shape, and every batch has its own
        # (rows x longest text): ~60 MB more per session after a few hundred chunks, no faster.
        opts.enable_mem_pattern = False
        opts.log_severity_level = 3
        try:
            return self._ort.InferenceSession(str(self.model_file), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EmbeddingError(f"cannot load the ONNX model {self.model_file}: {exc}") from exc

    @classmethod
    def shared(cls, model_file: Path, model_dir: Path, **kwargs: Any) -> OnnxEmbedder:
        """One session per process and settings."""
        key = (str(model_file), str(model_dir), *sorted(kwargs.items()))
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(model_file, model_dir, **kwargs)
            return cls._shared[key]

    def set_threads(self, threads: int) -> None:
        with self._lock:
            if threads != self._threads:
                self._session = None
                self._threads = threads

    def worker_factory(self) -> Callable[[], Embedder]:
        return functools.partial(
            OnnxEmbedder.shared, self.model_file, self.model_dir, batch_size=self.batch_size, threads=1
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        if not texts:
            return []
        # Longest first, in small batches: each batch is padded to its longest text.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            if self._session is None:
                self._session = self._open(self._threads)
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                feed = model_inputs(self._tokenizer, [texts[i] for i in idx])
                mask = feed["attention_mask"]
                hidden = self._session.run(None, feed)[0]
                weights = mask[..., None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
                out[idx] = pooled
        return out.tolist()


def load_tokenizer(model_dir: Path) -> Any:  # tokenizers.Tokenizer
    """The packaged tokenizer, truncating at the model's window and padding a batch to its longest."""
    from tokenizers import Tokenizer

    max_len = int(json.loads((model_dir / "sentence_bert_config.json").read_text()).get("max_seq_length", 256))
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
    return tokenizer


def model_inputs(tokenizer: Any, texts: Sequence[str]) -> dict[str, Any]:
    """The graph's three inputs for one batch of texts."""
    import numpy as np

    encoded = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
