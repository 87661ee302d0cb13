"""JSON Schema constrained decoding for the local model, with llguidance.

Why llguidance (among lm-format-enforcer, outlines, xgrammar, llguidance): it computes the
allowed-token mask in Rust in tens of microseconds per token with no per-schema precompilation
over the vocabulary (a small model on a CPU cannot afford seconds of grammar compilation per
request, nor a slow Python mask in every decoding step), it implements JSON Schema itself
(``LLMatcher.grammar_from_json_schema``), it is the engine behind the structured output of
vLLM, SGLang and llama.cpp's ``--json-schema`` path and is maintained by Microsoft (guidance),
and its wheel depends on nothing, so it cannot disturb the pinned torch / transformers.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import torch

from docmill.errors import ConfigurationError, LLMError

# JSON layouts tried in order. Fixed separators first (json.dumps style): a small model left free
# whitespace wanders into newlines and indentation. A prefill written another way (e.g.
# compact) falls back to flexible whitespace, so any valid prefix is accepted.
_LAYOUTS: list[dict[str, Any]] = [
    {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "},
    {"whitespace_flexible": True},
]

_tokenizers: dict[int, Any] = {}
_tokenizers_lock = threading.Lock()


def ll_tokenizer(hf_tokenizer: Any) -> Any:
    """llguidance's view of a (fast) Hugging Face tokenizer; built once per tokenizer (~1 s)."""
    import llguidance.hf

    with _tokenizers_lock:
        cached = _tokenizers.get(id(hf_tokenizer))
        if cached is None:
            cached = _tokenizers[id(hf_tokenizer)] = (hf_tokenizer, llguidance.hf.from_tokenizer(hf_tokenizer))
        return cached[1]


class JsonSchemaConstraint:
    """``decoding.TokenConstraint`` that admits exactly the replies valid for a JSON Schema.

    ``prefix_ids``: tokens the reply already starts with (an assistant prefill such as
    ``{"question": "``); the grammar consumes them first, so the model continues a valid prefix.
    """

    def __init__(self, hf_tokenizer: Any, schema: dict[str, Any], *, prefix_ids: list[int] | None = None) -> None:
        import llguidance
        import llguidance.torch

        tokenizer = ll_tokenizer(hf_tokenizer)
        problem = "no layout"
        for layout in _LAYOUTS:
            try:
                grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=layout)
                matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
            except (TypeError, ValueError) as error:
                raise ConfigurationError(f"unusable JSON schema: {error}") from error
            if matcher.is_error():
                raise ConfigurationError(f"unusable JSON schema: {matcher.get_error()}")
            if not prefix_ids or matcher.consume_tokens(prefix_ids):
                break
            problem = matcher.get_error()
        else:
            raise LLMError(f"the reply's prefill does not fit the JSON schema: {problem}")
        self._matcher = matcher
        self._bitmask = llguidance.torch.allocate_token_bitmask(1, tokenizer.vocab_size)
        self._fill = llguidance.torch.fill_next_token_bitmask
        self._apply = llguidance.torch.apply_token_bitmask_inplace

    def mask_logits(self, logits: torch.Tensor) -> None:
        self._fill(self._matcher, self._bitmask, 0)
        self._apply(logits, self._bitmask[0])

    def advance(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            raise LLMError(f"constrained decoding rejected token {token}: {self._matcher.get_error()}")

    def is_finished(self) -> bool:
        return bool(self._matcher.is_stopped())
