"""int8 all-MiniLM-L6-v2: the fused float32 export with its weight MatMuls quantised.

Plain dynamic int8 loses too much here (cosine 0.90 of PyTorch's on some chunks): a few hidden
channels of the LayerNorm and GELU outputs are many times larger than the rest, so one int8
scale per activation tensor flattens the small channels to nothing. The recipe that keeps every
corpus chunk above cosine 0.99:

1. *Outlier smoothing* (as SmoothQuant, but only for outliers): for the inputs of the Q/K/V,
   FFN-up and FFN-down projections, a channel whose calibration abs-max exceeds ``OUTLIER_K``
   times the median channel's is divided by ``s = max / (K * median)`` and the matching weight
   row multiplied by ``s``: the same float32 function, activations int8 can represent.
2. Dynamic quantisation of the weight MatMuls only: per-channel uint8 weights, full range (the
   u8u8 kernel does not saturate), embeddings and everything else in float32. Layer 0's FFN
   down-projection, whose input the smoothing cannot tame, stays float32.

The calibration texts ship with the installed packages (the model card and docmill's demo
samples), so the file is built offline and never sees the documents it is tested against.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from docmill.errors import EmbeddingError

OUTLIER_K = 3.0
RECIPE = "s3"  # in the file name: a change of recipe builds a new file
_KEEP_FLOAT = ("/inner/encoder/layer.0/output/dense/MatMul",)
_CHUNK_CHARS = 900


def calibration_texts(model_dir: Path) -> list[str]:
    """Paragraph-aligned pieces (up to ~900 characters, like ingest chunks) of the texts that
    ship with the install: the model card and the demo samples."""
    from docmill import demo

    files = [model_dir / "README.md", *sorted(Path(demo.__file__).parent.joinpath("samples").glob("*.md"))]
    out: list[str] = []
    for path in files:
        if not path.is_file():
            continue
        piece = ""
        for para in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            if piece and len(piece) + len(para) > _CHUNK_CHARS:
                out.append(piece.strip())
                piece = ""
            piece += para + "\n\n"
        if piece.strip():
            out.append(piece.strip())
    if len(out) < 4:
        raise EmbeddingError(f"too little calibration text for int8 quantisation ({len(out)} pieces)")
    return out


def quantize_int8(fused_fp32: Path, target: Path, model_dir: Path) -> None:
    """Write the int8 model for ``fused_fp32`` to ``target`` (atomically)."""
    try:
        import numpy as np
        import onnx
        from onnx import numpy_helper
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddingError("int8 quantisation needs onnx and onnxruntime (the 'processing' extra)") from exc

    model = onnx.load(str(fused_fp32))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    by_input: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            by_input.setdefault(node.input[0], []).append(node)
    targets = {name: users for name, users in by_input.items() if _smoothable(users)}
    if not targets:
        raise EmbeddingError(f"{fused_fp32.name}: no projection inputs found to smooth (an unexpected graph)")
    absmax = _activation_absmax(model, sorted(targets), calibration_texts(model_dir), model_dir)

    nodes = list(graph.node)
    for name in sorted(targets):
        users = targets[name]
        scale = np.maximum(1.0, absmax[name] / (OUTLIER_K * np.median(absmax[name]))).astype(np.float32)
        for user in users:
            w = numpy_helper.to_array(weights[user.input[1]])
            weights[user.input[1]].CopyFrom(numpy_helper.from_array((w * scale[:, None]).astype(np.float32), user.input[1]))
        inverse = name.replace("/", "_") + "_smooth_inv"
        graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse))
        mul = onnx.helper.make_node("Mul", [name, inverse], [name + "_smoothed"], name=name + "_SmoothMul")
        for user in users:
            user.input[0] = name + "_smoothed"
        nodes.insert(min(nodes.index(u) for u in users), mul)
    del graph.node[:]
    graph.node.extend(nodes)

    # onnxruntime.quantization logs a pre-processing hint on the root logger at WARNING; the
    # graph here is already optimised by ``export._fuse``.
    logging.getLogger().addFilter(_quiet_preprocess_hint)
    smoothed = target.with_name(f".{target.name}.{os.getpid()}.smoothed")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        onnx.save(model, str(smoothed))
        quantize_dynamic(
            str(smoothed),
            str(tmp),
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QUInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=list(_KEEP_FLOAT),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(tmp, target)
    finally:
        logging.getLogger().removeFilter(_quiet_preprocess_hint)
        smoothed.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _quiet_preprocess_hint(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()


def _smoothable(users: Sequence[Any]) -> bool:
    """Q/K/V (one input, three MatMuls), FFN up, FFN down; not the attention output projection."""
    first = users[0].name
    return (
        len(users) == 3
        or "intermediate/dense" in first
        or (first.endswith("/output/dense/MatMul") and "attention" not in first)
    )


def _activation_absmax(model: Any, names: list[str], texts: list[str], model_dir: Path) -> dict[str, Any]:
    import numpy as np
    import onnx
    import onnxruntime

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    for name in names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = onnxruntime.SessionOptions()
    # Unoptimised, so every tensor named in the graph still exists to be read.
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = onnxruntime.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    peaks: dict[str, Any] = {}
    for feed in _batches(texts, model_dir):
        for name, value in zip(names, session.run(names, feed), strict=True):
            channel_max = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            peaks[name] = np.maximum(peaks[name], channel_max) if name in peaks else channel_max
    return peaks


def _batches(texts: list[str], model_dir: Path, size: int = 8) -> Iterator[dict[str, Any]]:
    from docmill.embeddings.onnx import model_inputs
    from docmill.embeddings.packaged import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    # Batches of 8, as the recipe was measured: padding rows flow through the MatMuls too, so
    # they are part of the statistics.
    for start in range(0, len(texts), size):
        yield model_inputs(tokenizer, texts[start : start + size])
