"""Strict parsing of model output into JSON, with repair of the faults small models make.

Order of attempts: the text as is; the body of a ```json code fence; the first JSON-looking
span (from the first ``[`` or ``{``). Each candidate is tried verbatim, then repaired:
Python literals (True/None), single-quoted strings, trailing commas, smart quotes, and
truncation (an unterminated list is cut back to its last complete element and closed; an
unterminated object has its open string and brackets closed). What still fails raises
``OutputParseError``; the caller retries once with a corrective message, then drops.

Validators turn the parsed JSON into typed items (``QuestionItem``, ``JudgeVerdict``) and
raise ``OutputParseError`` on shape errors so they take the same retry path.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from docmill.errors import DocmillError


class OutputParseError(DocmillError):
    """Model output that is not the JSON the prompt asked for, even after repair."""

    code = "OutputParseError"


@dataclass
class Parsed:
    value: Any
    repairs: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> bool:
        return bool(self.repairs)


_FENCE = re.compile(r"```(?:json|JSON|javascript|js)?\s*\n?(.*?)(?:```|\Z)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def _candidates(text: str) -> list[tuple[str, list[str]]]:
    text = text.strip().lstrip("\ufeff")
    found: list[tuple[str, list[str]]] = [(text, [])]
    for match in _FENCE.finditer(text):
        body = match.group(1).strip()
        if body:
            found.append((body, ["code_fence"]))
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if starts:
        start = min(starts)
        span = text[start:]
        # Cut prose after the JSON: up to the last closing bracket of the matching kind.
        closer = "]" if text[start] == "[" else "}"
        end = span.rfind(closer)
        if end > 0:
            found.append((span[: end + 1], ["extracted"]))
        found.append((span, ["extracted"]))
    seen: set[str] = set()
    unique = []
    for cand, notes in found:
        if cand not in seen:
            seen.add(cand)
            unique.append((cand, notes))
    return unique


def _python_literals(text: str) -> str:
    # Only outside strings: walk the text and replace bare True/False/None tokens.
    out: list[str] = []
    i, n = 0, len(text)
    in_str: str | None = None
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == in_str:
                in_str = None
            i += 1
            continue
        if ch in "\"'":
            in_str = ch
            out.append(ch)
            i += 1
            continue
        for word, repl in (("True", "true"), ("False", "false"), ("None", "null")):
            if text.startswith(word, i) and not (i > 0 and text[i - 1].isalnum()) and not (
                i + len(word) < n and text[i + len(word)].isalnum()
            ):
                out.append(repl)
                i += len(word)
                break
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _single_to_double_quotes(text: str) -> str:
    """Convert single-quoted JSON strings to double-quoted, leaving apostrophes inside
    double-quoted strings alone."""
    out: list[str] = []
    i, n = 0, len(text)
    in_str: str | None = None
    while i < n:
        ch = text[i]
        if in_str is None:
            if ch == '"':
                in_str = '"'
                out.append(ch)
            elif ch == "'":
                in_str = "'"
                out.append('"')
            else:
                out.append(ch)
            i += 1
            continue
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if in_str == "'" and nxt == "'":
                out.append("'")
            else:
                out.append(ch + nxt)
            i += 2
            continue
        if ch == in_str:
            # An apostrophe inside a word (don't) is not the closing quote.
            if in_str == "'" and i + 1 < n and text[i + 1].isalpha() and i > 0 and text[i - 1].isalpha():
                out.append("'")
                i += 1
                continue
            out.append('"')
            in_str = None
            i += 1
            continue
        if in_str == "'" and ch == '"':
            out.append('\\"')
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _scan(text: str) -> tuple[list[str], bool, int]:
    """Bracket stack and string state at the end of ``text``, and the index just after the
    last complete element of the outermost container (-1 if none)."""
    stack: list[str] = []
    in_str = False
    escape = False
    last_complete = -1
    for i, ch in enumerate(text):
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
                if len(stack) == 1:
                    last_complete = i + 1
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if stack and stack[-1] == ch:
                stack.pop()
                if len(stack) == 1:
                    last_complete = i + 1
        elif len(stack) == 1 and ch not in " \t\r\n,:" and (i + 1 == len(text) or text[i + 1] in " \t\r\n,]}"):
            last_complete = i + 1  # end of a bare number / literal
    return stack, in_str, last_complete


def _close_truncated(text: str) -> str | None:
    stack, in_str, last_complete = _scan(text)
    if not stack and not in_str:
        return None
    if stack and stack[0] == "]" and last_complete > 0:
        # A truncated list: keep the complete elements, drop the partial last one.
        head = text[:last_complete].rstrip().rstrip(",")
        return head + "]"
    # A truncated object: close the open string and every open bracket.
    fixed = text + ('"' if in_str else "")
    fixed = re.sub(r",\s*$", "", fixed.rstrip())
    fixed = re.sub(r",?\s*\"[^\"]*\"\s*:?\s*$", "", fixed) if fixed.rstrip().endswith(":") else fixed
    return fixed + "".join(reversed(stack))


def _loads(text: str) -> Any:
    return json.loads(text)


def parse_json(text: str) -> Parsed:
    """Parse model output as JSON, repairing common faults. Raises ``OutputParseError``."""
    if not text or not text.strip():
        raise OutputParseError("empty reply")
    last_error = "no JSON found"
    for candidate, notes in _candidates(text):
        try:
            return Parsed(_loads(candidate), notes)
        except json.JSONDecodeError as exc:
            last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        repairs = list(notes)
        fixed = candidate.translate(_SMART)
        if fixed != candidate:
            repairs.append("smart_quotes")
        step = _python_literals(fixed)
        if step != fixed:
            repairs.append("python_literals")
            fixed = step
        if "'" in fixed:
            step = _single_to_double_quotes(fixed)
            if step != fixed:
                try:
                    _loads(_TRAILING_COMMA.sub(r"\1", step))
                    repairs.append("single_quotes")
                    fixed = step
                except json.JSONDecodeError:
                    # Keep the conversion only if it helps; apostrophes in prose break it.
                    if fixed.lstrip()[:2] in ("['", "{'") or ": '" in fixed or "':" in fixed:
                        repairs.append("single_quotes")
                        fixed = step
        step = _TRAILING_COMMA.sub(r"\1", fixed)
        if step != fixed:
            repairs.append("trailing_commas")
            fixed = step
        try:
            return Parsed(_loads(fixed), repairs)
        except json.JSONDecodeError:
            pass
        closed = _close_truncated(fixed)
        if closed is not None:
            closed = _TRAILING_COMMA.sub(r"\1", closed)
            try:
                return Parsed(_loads(closed), [*repairs, "truncated"])
            except json.JSONDecodeError:
                pass
        try:  # last resort for Python-dict-looking output
            value = ast.literal_eval(candidate)
            if isinstance(value, (list, dict)):
                return Parsed(json.loads(json.dumps(value)), [*notes, "python_literal_eval"])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    raise OutputParseError(f"not valid JSON: {last_error}")


# --- typed validators -----------------------------------------------------------------------

QuestionType = Literal["factual", "reasoning", "summary", "instruction"]
QUESTION_TYPES: tuple[str, ...] = ("factual", "reasoning", "summary", "instruction")
_TYPE_ALIASES = {
    "fact": "factual",
    "factoid": "factual",
    "reason": "reasoning",
    "analysis": "reasoning",
    "summarize": "summary",
    "summarise": "summary",
    "summarization": "summary",
    "instruction-style": "instruction",
    "instruction_style": "instruction",
    "task": "instruction",
}


class QuestionItem(BaseModel):
    type: QuestionType = "factual"
    instruction: str = Field(min_length=1)
    input: str = ""
    output: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _norm_type(cls, v: Any) -> Any:
        if isinstance(v, str):
            key = v.strip().lower()
            return _TYPE_ALIASES.get(key, key)
        return v

    @field_validator("instruction", "input", mode="before")
    @classmethod
    def _strip(cls, v: Any) -> Any:
        if v is None:
            return ""
        return v.strip() if isinstance(v, str) else v

    @field_validator("output", mode="before")
    @classmethod
    def _text_or_none(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, (list, dict)):
            return json.dumps(v, ensure_ascii=False)
        return str(v).strip() or None

    @property
    def question(self) -> str:
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


@dataclass
class QuestionParse:
    items: list[QuestionItem]
    invalid_items: int
    repairs: list[str]


def parse_questions(text: str, expected_types: Sequence[str] | None = None) -> QuestionParse:
    """A JSON list of question items (or ``{"questions": [...]}``); invalid items are skipped
    and counted, but a reply with no valid item at all is an ``OutputParseError``.

    With ``expected_types`` (the types the prompt asked for, in order), an item whose type is
    missing or unknown takes the type requested at its position (repair ``type_from_request``)."""
    parsed = parse_json(text)
    value = parsed.value
    if isinstance(value, dict):
        for key in ("questions", "items", "data", "results"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            value = [value] if "instruction" in value or "question" in value else value
    if not isinstance(value, list):
        raise OutputParseError("expected a JSON list of items")
    items: list[QuestionItem] = []
    invalid = 0
    repairs = list(parsed.repairs)
    for position, raw in enumerate(value):
        if isinstance(raw, dict) and "instruction" not in raw and isinstance(raw.get("question"), str):
            raw = {**raw, "instruction": raw["question"]}
        if isinstance(raw, dict) and expected_types:
            kind = raw.get("type")
            norm = _TYPE_ALIASES.get(kind.strip().lower(), kind.strip().lower()) if isinstance(kind, str) else None
            if norm not in QUESTION_TYPES:
                raw = {**raw, "type": expected_types[position % len(expected_types)]}
                if "type_from_request" not in repairs:
                    repairs.append("type_from_request")
        try:
            items.append(QuestionItem.model_validate(raw))
        except ValidationError:
            invalid += 1
    if not items:
        raise OutputParseError(f"no valid item among {len(value)}: each needs type and a non-empty instruction")
    return QuestionParse(items=items, invalid_items=invalid, repairs=repairs)


class JudgeVerdict(BaseModel):
    relevance: int = Field(ge=1, le=5)
    groundedness: int = Field(ge=1, le=5)
    helpfulness: int = Field(ge=1, le=5)
    answerable: bool = True
    reason: str = ""

    @field_validator("relevance", "groundedness", "helpfulness", mode="before")
    @classmethod
    def _score(cls, v: Any) -> Any:
        if isinstance(v, str):
            match = re.search(r"\d+(?:\.\d+)?", v)
            if not match:
                raise ValueError(f"not a score: {v!r}")
            v = float(match.group(0))
        if isinstance(v, float):
            v = int(round(v))
        return v

    @field_validator("answerable", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> Any:
        if isinstance(v, str):
            key = v.strip().lower()
            if key in ("yes", "true", "y", "1"):
                return True
            if key in ("no", "false", "n", "0"):
                return False
        return v

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, v: Any) -> Any:
        return "" if v is None else str(v)

    @property
    def score(self) -> float:
        return round((self.relevance + self.groundedness + self.helpfulness) / 3.0, 4)


@dataclass
class JudgeParse:
    verdict: JudgeVerdict
    repairs: list[str]


_KV_SCORE = {
    name: re.compile(rf"{name}\W{{0,6}}(\d(?:\.\d+)?)(?:\s*/\s*5)?", re.IGNORECASE)
    for name in ("relevance", "groundedness", "helpfulness")
}
_KV_ANSWERABLE = re.compile(r"answerable\W{0,6}(true|false|yes|no)", re.IGNORECASE)


def _judge_from_labelled_text(text: str) -> dict[str, Any] | None:
    """``Relevance: 4, Groundedness: 5 ...`` as small models often write instead of JSON."""
    found: dict[str, Any] = {}
    for name, pattern in _KV_SCORE.items():
        match = pattern.search(text)
        if not match:
            return None
        found[name] = match.group(1)
    flag = _KV_ANSWERABLE.search(text)
    if flag:
        found["answerable"] = flag.group(1)
    return found


def parse_judge(text: str) -> JudgeParse:
    try:
        parsed = parse_json(text)
    except OutputParseError:
        labelled = _judge_from_labelled_text(text)
        if labelled is None:
            raise
        parsed = Parsed(labelled, ["labelled_text"])
    value = parsed.value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    if not isinstance(value, dict):
        raise OutputParseError("expected one JSON object with relevance, groundedness, helpfulness, answerable")
    lowered = {str(k).strip().lower(): v for k, v in value.items()}
    try:
        return JudgeParse(JudgeVerdict.model_validate(lowered), parsed.repairs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise OutputParseError(f"judge JSON has the wrong shape: {problems}") from exc


_CITATION = re.compile(r"\[(\d{1,2}(?:\s*[,;]\s*\d{1,2})*)\]")


def cited_numbers(answer: str) -> list[int]:
    """Chunk numbers an answer cites as [1], [2][3] or [1, 2] (in first-seen order)."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        for part in re.split(r"[,;]", match.group(1)):
            num = int(part.strip())
            if num not in seen:
                seen.append(num)
    return seen


def strip_citations(answer: str) -> str:
    text = re.sub(r"\s*" + _CITATION.pattern, "", answer)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()
