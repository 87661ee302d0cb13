"""all-MiniLM-L6-v2 through ONNX Runtime: no torch in the process, so a cold start is fast.

The ONNX graph is exported once from the packaged PyTorch weights (``docmill.embeddings.export``,
run by ``scripts/install.sh`` or on first use) into a cache folder. Tokenisation uses the
packaged ``tokenizer.json`` through ``tokenizers`` directly; pooling (attention-masked mean)
and L2 normalisation are the sentence-transformers recipe, so vectors match the PyTorch model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from docmill.embeddings.packaged import PackagedModelEmbedder, mean_pooled
from docmill.errors import EmbeddingError


class OnnxEmbedder(PackagedModelEmbedder):
    def __init__(self, model_file: Path, model_dir: Path, *, batch_size: int = 1, threads: int | None = None) -> None:
        self._ort = self._runtime("onnxruntime", "ONNX")
        super().__init__(model_dir, batch_size=batch_size, threads=threads)
        self.model_file = Path(model_file)
        # Opened on first use: an ingest parent that hands embedding to its workers never needs it.
        self._session: Any = None

    @property
    def model_paths(self) -> tuple[Path, ...]:
        return (self.model_file,)

    def _close_models(self) -> None:
        self._session = None

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
                out[idx] = mean_pooled(self._session.run(None, feed)[0], feed["attention_mask"])
        return out.tolist()


def model_inputs(tokenizer: Any, texts: Sequence[str]) -> dict[str, Any]:
    """The graph's three inputs for one batch of texts."""
    import numpy as np

    encoded = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
