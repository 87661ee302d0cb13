"""Cheap token estimates, used before a call (rate limiter, budgets, dry runs).

The estimate is deliberately simple (about four characters per token for English, which is
what Llama 3 and most BPE vocabularies average) and errs high for short strings; the limiter
reconciles it with the real usage the endpoint reports after the call.
"""

from __future__ import annotations

from collections.abc import Sequence

from docmill.llm.base import ChatMessage

CHARS_PER_TOKEN = 4.0
PER_MESSAGE_OVERHEAD = 4  # role header + end-of-turn markers in chat templates


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    return max(1, int(len(text) / CHARS_PER_TOKEN + 0.999))


def estimate_messages_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content) + PER_MESSAGE_OVERHEAD for m in messages) + 3
