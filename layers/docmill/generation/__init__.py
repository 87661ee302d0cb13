"""Dataset generation: prompts, questions, retrieval, answers, judge, curation.

Public API (the workflow calls the three steps separately; the CLI calls ``run_generation``):

- ``plan(chunks, config, *, prompts=None, work=None, model_id=None) -> GenerationPlan``
- ``generate_batch(work, batch_id, *, llm, store, embedder, ...) -> BatchResult``
- ``assemble(work, out, *, llm_accounting=None) -> AssembleResult``
- ``run_generation(chunks, config, *, llm, store, embedder, out, ...) -> GenerationResult``
"""

from docmill.generation.assemble import AssembleResult, assemble
from docmill.generation.models import CurationConfig, GenerationConfig, GenerationPlan, SplitConfig
from docmill.generation.pipeline import (
    BatchResult,
    GenerationResult,
    collection_chunks,
    generate_batch,
    load_plan,
    plan,
    run_generation,
)
from docmill.generation.prompts import PromptSet, load_prompts

__all__ = [
    "AssembleResult",
    "BatchResult",
    "CurationConfig",
    "GenerationConfig",
    "GenerationPlan",
    "GenerationResult",
    "PromptSet",
    "SplitConfig",
    "assemble",
    "collection_chunks",
    "generate_batch",
    "load_plan",
    "load_prompts",
    "plan",
    "run_generation",
]
