"""JSON Schemas of the JSON stages, for clients that enforce a schema while decoding
(``LLMClient.supports_json_schema``; the embedded model through llguidance).

The question schema does more than fix the shape: each ``instruction`` must open like a
question or a task (What/Which/How/... or List/Summarise/...), so even a small model writes
questions rather than prose. Replies are still parsed and checked as for any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docmill.generation.parsing import QUESTION_TYPES

OPENINGS = (
    "What", "Which", "Who", "When", "Where", "Why", "How", "In what", "According to",
    "List", "Summarise", "Summarize", "Describe", "Explain", "Name", "Compare",
)


def question_schema(types: Sequence[str], *, max_chars: int = 220) -> dict[str, Any]:
    """A list of ``len(types)`` items ``{type, instruction, input, output}``, in the order the
    question prompt's prefill opens them."""
    opening = "|".join(OPENINGS)
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": max(1, len(types)),
        "items": {
            "type": "object",
            "properties": {
                "type": {"enum": list(QUESTION_TYPES)},
                "instruction": {"type": "string", "pattern": f"^({opening}) [^\\n]{{8,{max_chars}}}$"},
                "input": {"type": "string", "maxLength": 400},
                "output": {"type": "string", "maxLength": 400},
            },
            "required": ["type", "instruction", "input", "output"],
            "additionalProperties": False,
        },
    }


def judge_schema() -> dict[str, Any]:
    score = {"type": "integer", "minimum": 1, "maximum": 5}
    return {
        "type": "object",
        "properties": {
            "relevance": score,
            "groundedness": score,
            "helpfulness": score,
            "answerable": {"type": "boolean"},
            "reason": {"type": "string", "maxLength": 300},
        },
        "required": ["relevance", "groundedness", "helpfulness", "answerable", "reason"],
        "additionalProperties": False,
    }


__all__ = ["OPENINGS", "judge_schema", "question_schema"]
