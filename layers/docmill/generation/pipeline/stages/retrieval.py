"""Retrieval stage: search the collection with each question of a chunk.

One embedding batch per chunk, one search per question, ``verify_k`` deep (at least
``top_k``). The first ``top_k`` hits are the answer's context; the rank of the chunk the
question was written from, anywhere in the ``verify_k`` hits, is the retrieval verification
signal (hit@k, MRR): a question that does not find its own source is vague or off-topic.
"""

from __future__ import annotations

from typing import ClassVar

from docmill.errors import DocmillError
from docmill.generation.pipeline.calls import Sink
from docmill.generation.pipeline.planning import BatchChunk
from docmill.generation.pipeline.stages.base import Candidate, Drop, StageContext
from docmill.vectorstores.base import SearchFilter, SearchHit


def source_rank(hits: list[SearchHit], chunk_id: str) -> int | None:
    return next((i + 1 for i, h in enumerate(hits) if h.chunk_id == chunk_id), None)


class RetrievalStage:
    name: ClassVar[str] = "retrieval"

    def run(self, ctx: StageContext, sink: Sink, bc: BatchChunk, candidates: list[Candidate]) -> list[list[SearchHit]]:
        depth = max(ctx.config.top_k, ctx.config.verify_k)
        try:
            vectors = ctx.embedder.embed_documents([c.item.question for c in candidates])
            filters = SearchFilter(collection=ctx.config.collection, tenant=ctx.config.tenant)
            return [ctx.store.search(v, k=depth, filters=filters) for v in vectors]
        except DocmillError as exc:
            raise Drop(f"retrieval_error:{exc.code}", len(candidates)) from exc
