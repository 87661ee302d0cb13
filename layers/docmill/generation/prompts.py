"""Versioned prompt templates (YAML + Jinja) with few-shot examples, overridable per run or collection.

A prompt file holds ``id``, ``version``, default generation ``params``, a ``system`` and a
``user`` Jinja template, and ``few_shot`` examples (``vars`` rendered through the same user
template, plus the ideal ``response``). Rendering yields chat messages::

    system, (user(example vars), assistant(example response))*, user(real vars)

Built-in prompts live beside this module in ``prompts/``. A folder of overrides (per run, or
``<home>/collections/<collection>/prompts/`` per collection) may hold any of the files
``question.yaml``, ``answer.yaml``, ``rejected.yaml``, ``judge.yaml``; a file there replaces the
built-in one of the same name. The id and version of each prompt used end up in provenance.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import BaseModel, Field, ValidationError

from docmill.errors import ConfigurationError
from docmill.llm.base import ChatMessage, GenerationParams

PromptKind = Literal["question", "answer", "rejected", "judge"]
PROMPT_KINDS: tuple[PromptKind, ...] = ("question", "answer", "rejected", "judge")

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # noqa: S701 - prompts are plain text, never HTML
)


class FewShotExample(BaseModel):
    vars: dict[str, Any] = Field(default_factory=dict)
    response: str


class PromptParams(BaseModel):
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None


class PromptTemplate(BaseModel):
    id: str
    version: int | str
    description: str = ""
    params: PromptParams = Field(default_factory=PromptParams)
    system: str = ""
    user: str
    few_shot: list[FewShotExample] = Field(default_factory=list)
    # The opening of the reply, given to models that continue an assistant message
    # (LLMClient.supports_prefill); the parser sees prefill + continuation.
    prefill: str = ""
    origin: str = ""  # where it was loaded from (a path or "builtin:<file>")

    @property
    def ref(self) -> dict[str, str]:
        return {"id": self.id, "version": str(self.version)}

    def _render(self, template: str, variables: dict[str, Any]) -> str:
        try:
            return _ENV.from_string(template).render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise ConfigurationError(f"prompt {self.id} v{self.version}: {exc.message}") from exc
        except jinja2.TemplateError as exc:
            raise ConfigurationError(f"prompt {self.id} v{self.version} ({self.origin}): {exc}") from exc

    def render(self, **variables: Any) -> list[ChatMessage]:
        messages: list[ChatMessage] = []
        system = self._render(self.system, variables) if self.system else ""
        if system:
            messages.append(ChatMessage(role="system", content=system))
        for example in self.few_shot:
            merged = {**variables, **example.vars}
            messages.append(ChatMessage(role="user", content=self._render(self.user, merged)))
            messages.append(ChatMessage(role="assistant", content=example.response.strip()))
        messages.append(ChatMessage(role="user", content=self._render(self.user, variables)))
        return messages

    def render_prefill(self, **variables: Any) -> str | None:
        return self._render(self.prefill, variables) if self.prefill else None

    def generation_params(self, base: GenerationParams | None = None, **overrides: Any) -> GenerationParams:
        """Defaults < the prompt file's ``params`` < explicit overrides (None values ignored)."""
        data = (base or GenerationParams()).model_dump()
        data.update({k: v for k, v in self.params.model_dump().items() if v is not None})
        data.update({k: v for k, v in overrides.items() if v is not None})
        return GenerationParams(**data)


def load_prompt_file(path: Path | str, *, text: str | None = None, origin: str | None = None) -> PromptTemplate:
    raw_text = text if text is not None else Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(raw_text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"prompt file {path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(f"prompt file {path}: expected a mapping with id, version, user")
    try:
        template = PromptTemplate(**raw, origin=origin or str(path))
    except (ValidationError, TypeError) as exc:
        raise ConfigurationError(f"prompt file {path}: {exc}") from exc
    try:  # fail at load time, not mid-run, on a broken template
        _ENV.parse(template.user)
        _ENV.parse(template.system)
        _ENV.parse(template.prefill)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigurationError(f"prompt file {path}: template syntax: {exc}") from exc
    return template


class PromptSet(BaseModel):
    question: PromptTemplate
    answer: PromptTemplate
    rejected: PromptTemplate
    judge: PromptTemplate

    def get(self, kind: PromptKind) -> PromptTemplate:
        return getattr(self, kind)

    def refs(self) -> dict[str, dict[str, str]]:
        return {kind: self.get(kind).ref for kind in PROMPT_KINDS}


def builtin_prompt(kind: PromptKind) -> PromptTemplate:
    res = resources.files("docmill.generation").joinpath("prompts", f"{kind}.yaml")
    return load_prompt_file(f"{kind}.yaml", text=res.read_text(encoding="utf-8"), origin=f"builtin:{kind}.yaml")


def load_prompts(override_dirs: Iterable[Path | str | None] = ()) -> PromptSet:
    """Built-in prompts, each replaced by the first ``<kind>.yaml`` found in ``override_dirs``.

    Give the most specific folder first: ``[run_dir, collection_dir]``. Missing folders are
    skipped (a collection without its own prompts is the normal case); a named run folder
    that does not exist is a configuration error the caller should raise before calling.
    """
    dirs = [Path(d) for d in override_dirs if d is not None]
    chosen: dict[str, PromptTemplate] = {}
    for kind in PROMPT_KINDS:
        for folder in dirs:
            for suffix in (".yaml", ".yml"):
                candidate = folder / f"{kind}{suffix}"
                if candidate.is_file():
                    chosen[kind] = load_prompt_file(candidate)
                    break
            if kind in chosen:
                break
        if kind not in chosen:
            chosen[kind] = builtin_prompt(kind)
    return PromptSet(**chosen)


def collection_prompts_dir(home: Path, collection: str) -> Path:
    return Path(home) / "collections" / collection / "prompts"
