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

CTranslate2 runs its own kernels (softmax, GELU, LayerNorm, (de)quantisation) in AVX2 unless
``CT2_FORCE_CPU_ISA`` names AVX512; it reads that variable once per process, when the first model
opens. Where the CPU has the AVX-512 subset those kernels need, docmill sets it (``select_cpu_isa``):
oneDNN already runs the GEMMs in AVX-512 (VNNI) on such a CPU, so its clock cost is paid anyway, and
on a Zen 4 core the same vectors (within 1e-3 cosine) come 8-18 % faster. A value the user set wins;
a build that refuses AVX-512 (no CPU dispatch) is reopened on its own choice.

Both models are converted once from the packaged PyTorch weights (``docmill.embeddings.export``,
run by ``scripts/install.sh`` or on first use) into a cache folder. Tokenisation, masked mean
pooling and normalisation are shared with the ONNX embedder (``docmill.embeddings.packaged``);
no torch in the process.
"""

from __future__ import annotations

import functools
import os
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from docmill.embeddings.packaged import PackagedModelEmbedder, mean_pooled
from docmill.errors import EmbeddingError

FLOAT_UNDER_DISTINCT_TOKENS = 24  # [CLS] and [SEP] included

ISA_VARIABLE = "CT2_FORCE_CPU_ISA"
AVX512 = "AVX512"  # the variable's value, and the word in CTranslate2's refusals
# What CTranslate2's AVX-512 kernels were built for (its cpu_supports_avx512); it refuses to open a
# model when told AVX512 on a CPU without them, so all five must be there.
AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"})
# ISAs this process's CTranslate2 refused when asked: not asked for again.
_REFUSED_ISAS: set[str] = set()


@functools.cache  # a CPU's flags do not change while a process runs; models open several times
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The instruction-set flags the kernel reports (and has enabled) for this CPU; none off Linux."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def select_cpu_isa(environ: MutableMapping[str, str], flags: frozenset[str]) -> str | None:
    """Ask CTranslate2 for its AVX-512 kernels where the CPU has them; the ISA it will use is returned
    (None: its own choice, AVX2 or lower). ``environ`` is the process environment: CTranslate2 takes
    its ISA from nowhere else, and a value already there (the user's) is kept."""
    if ISA_VARIABLE not in environ and flags >= AVX512_FLAGS:
        environ[ISA_VARIABLE] = AVX512
    return environ.get(ISA_VARIABLE)


class CTranslate2Embedder(PackagedModelEmbedder):
    def __init__(
        self, model_path: Path, float_model_path: Path, model_dir: Path, *, batch_size: int = 1, threads: int | None = None
    ) -> None:
        self._ct2 = self._runtime("ctranslate2", "CTranslate2")
        super().__init__(model_dir, batch_size=batch_size, threads=threads)
        self.model_path = Path(model_path)
        self.float_model_path = Path(float_model_path)
        # Opened on first use and never before a fork: an encoder owns a thread pool, which a
        # forked ingest worker would not inherit. One per model ("int8", "float32").
        self._encoders: dict[str, Any] = {}

    @property
    def model_paths(self) -> tuple[Path, ...]:
        return (self.model_path, self.float_model_path)

    def _close_models(self) -> None:
        self._encoders = {}

    def _encoder(self, compute_type: str):  # noqa: ANN202 - ctranslate2.Encoder
        if compute_type not in self._encoders:
            self._encoders[compute_type] = self._open(compute_type, self._threads)
        return self._encoders[compute_type]

    def _open(self, compute_type: str, threads: int):  # noqa: ANN202 - ctranslate2.Encoder
        path = self.model_path if compute_type == "int8" else self.float_model_path
        users_isa = os.environ.get(ISA_VARIABLE)
        isa = users_isa if AVX512 in _REFUSED_ISAS else select_cpu_isa(os.environ, cpu_flags())
        try:
            try:
                return self._encoder_at(path, compute_type, threads)
            except Exception as exc:
                # Its two refusals: "The CPU does not support AVX512", "... not compiled with AVX512 support".
                if users_isa is not None or isa != AVX512 or AVX512 not in str(exc):
                    raise
                # A build without CPU dispatch (or a CPU its detection doubts) refuses AVX-512:
                # CTranslate2's own choice then, for this process and its workers.
                _REFUSED_ISAS.add(isa)
                os.environ.pop(ISA_VARIABLE, None)
                return self._encoder_at(path, compute_type, threads)
        except Exception as exc:
            raise EmbeddingError(f"cannot load the CTranslate2 model {path}: {exc}") from exc

    def _encoder_at(self, path: Path, compute_type: str, threads: int):  # noqa: ANN202 - ctranslate2.Encoder
        return self._ct2.Encoder(
            str(path),
            device="cpu",
            compute_type=compute_type,
            inter_threads=1,
            intra_threads=threads or len(os.sched_getaffinity(0)),
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        if not texts:
            return []
        ids = self._token_ids(texts)
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
        return mean_pooled(hidden, np.arange(hidden.shape[1])[None, :] < lengths[:, None])
