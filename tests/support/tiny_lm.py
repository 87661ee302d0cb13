"""Tiny random Llamas and tokenizers trained on the spot: real code paths, no download.

One tokenizer builder and one model builder, parameterised by the chat format and the size the
caller needs:
- ``ROLE_TAGS`` (``<|user|>...<|end|>``): the dataset-consumer checks (TRL trainers in process);
- ``CHATML`` (``<|im_start|>...<|im_end|>``): the fine-tuning tests, which load a saved folder
  (``build_tiny_llama``) as a ``--base PATH`` exactly as they load a real model;
- ``EOS_ONLY``: the constrained-decoding tests, which need no chat template at all.

Training from a random model proves that the data goes through the consumer's own preparation
and a real optimiser step, not that anything is learnt. A 1-2 layer, 32-wide model keeps a step at
milliseconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ChatFormat:
    specials: tuple[str, ...]
    eos: str
    pad: str | None = None
    bos: str | None = None
    unk: str | None = None
    template: str | None = None


#: Renders the prompt as a prefix of prompt + answer, as TRL requires of a chat template.
ROLE_TAGS = ChatFormat(
    specials=("<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
    pad="<|pad|>",
    bos="<|bos|>",
    eos="<|eos|>",
    template=(
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    ),
)
CHATML = ChatFormat(
    specials=("<unk>", "<|im_start|>", "<|im_end|>", "<pad>"),
    unk="<unk>",
    pad="<pad>",
    bos="<|im_start|>",
    eos="<|im_end|>",
    template=(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
)
EOS_ONLY = ChatFormat(specials=("<eos>",), eos="<eos>")

#: What the saved fine-tuning base is trained on: question/answer text like the datasets it meets.
CORPUS = [
    "What does the warranty cover? The warranty covers parts and labour for two years.",
    "Question: How do I reset the device? Answer: Hold the power button for ten seconds.",
    "docmill turns documents into datasets for fine-tuning language models with LoRA.",
]


def tiny_tokenizer(texts: Iterable[str], vocab_size: int = 400, chat: ChatFormat = ROLE_TAGS) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` with ``chat``'s special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token=chat.unk))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(chat.specials), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(list(texts), trainer=trainer)
    named = {"unk_token": chat.unk, "pad_token": chat.pad, "bos_token": chat.bos, "eos_token": chat.eos}
    fast = PreTrainedTokenizerFast(tokenizer_object=raw, **{k: v for k, v in named.items() if v is not None})
    if chat.template is not None:
        fast.chat_template = chat.template
    return fast


def eos_only_tokenizer(corpus: Iterable[str], vocab_size: int = 400) -> Any:
    """A byte-level BPE tokenizer with ``<eos>`` as its only special token (constrained-decoding tests)."""
    return tiny_tokenizer(corpus, vocab_size, chat=EOS_ONLY)


def tiny_llama(
    tokenizer: Any, *, layers: int = 1, heads: int = 2, kv_heads: int = 2, max_positions: int = 1024
) -> Any:
    """A random 32-wide Llama over ``tokenizer``'s vocabulary (seeded: the same weights every time)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def build_tiny_llama(target: Path) -> Path:
    """A ChatML tiny Llama saved as a normal transformers folder (a ``--base PATH`` like any other)."""
    if (target / "config.json").is_file():
        return target
    tokenizer = tiny_tokenizer(CORPUS * 4, chat=CHATML)
    model = tiny_llama(tokenizer, layers=2, heads=4, kv_heads=2, max_positions=512)
    model.generation_config.max_new_tokens = 8
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
