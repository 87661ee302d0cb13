"""The generation pipeline: plan -> generate batches (shards) -> assemble datasets.

The steps are separate so the AWS workflow can run them as separate tasks (plan; a
Distributed Map of ``generate_batch`` over ``plan.batches``; assemble), exchanging only object
keys in a work store (``ObjectStore``). ``run_generation`` does all three in-process.

Units (each imports only the ones before it):

- ``planning``: sampling, distractors, batches, estimates, plan/batch/prompt files;
- ``calls``: token budget, per-batch accounting, LLM calls with repair and a corrective retry;
- ``stages``: question, retrieval, answer, rejected, judge, verification (one unit each);
- ``engine``: threads that run the stages of every chunk and question, record building;
- ``shards``: shard files in the work store;
- ``run``: ``generate_batch`` and ``run_generation``.
"""

from docmill.generation.models import merge_counts
from docmill.generation.pipeline.calls import TokenBudget
from docmill.generation.pipeline.engine import GenerationEngine, record_id, resolve_modes
from docmill.generation.pipeline.planning import (
    BatchChunk,
    collection_chunks,
    estimate_plan,
    load_plan,
    plan,
    sample_chunks,
)
from docmill.generation.pipeline.run import BatchResult, GenerationResult, generate_batch, run_generation

__all__ = [
    "BatchChunk",
    "BatchResult",
    "GenerationEngine",
    "GenerationResult",
    "TokenBudget",
    "collection_chunks",
    "estimate_plan",
    "generate_batch",
    "load_plan",
    "merge_counts",
    "plan",
    "record_id",
    "resolve_modes",
    "run_generation",
    "sample_chunks",
]
