"""Test doubles for generation tests (not used by docmill itself).

- ``HashingEmbedder``: deterministic bag-of-words hashing vectors, L2-normalised. Stands in for
  MiniLM so unit tests stay fast; similar texts (shared words) get similar vectors, which is
  all retrieval tests need.
- ``MemoryVectorStore``: exact cosine search over numpy, with collection/tenant filters and
  ``iter_chunks``. Stands in for LanceDB / OpenSearch.
- ``FakeModel``: a reply function for ``ScriptedLLM`` that plays every stage of the pipeline
  (question, answer, rejected, judge) from the prompt it receives, with switches to inject
  malformed JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from docmill.embeddings.base import Embedder
from docmill.llm.base import ChatMessage
from docmill.models import ChunkRecord, chunk_id_for
from docmill.vectorstores.base import SearchFilter, SearchHit, UpsertResult, VectorStore

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder(Embedder):
    model_id = "test-hashing-embedder"

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = np.zeros(self.dimension, dtype=np.float32)
            for word in _WORD.findall(text.lower()):
                h = int(hashlib.md5(word.encode(), usedforsecurity=False).hexdigest(), 16)
                vec[h % self.dimension] += 1.0 if (h >> 64) & 1 else -1.0
            norm = float(np.linalg.norm(vec))
            out.append((vec / norm if norm else vec).tolist())
        return out


class MemoryVectorStore(VectorStore):
    def __init__(self) -> None:
        self._chunks: dict[tuple[str, str, str], ChunkRecord] = {}  # (tenant, collection, chunk_id)
        self._lock = threading.Lock()
        self.searches = 0
        self.filters_seen: list[SearchFilter | None] = []

    def ensure_index(self, dimension: int) -> None:
        self.dimension = dimension

    def upsert(self, chunks: Sequence[ChunkRecord]) -> UpsertResult:
        with self._lock:
            for c in chunks:
                self._chunks[(c.tenant, c.collection, c.chunk_id)] = c
        return UpsertResult(upserted=len(chunks))

    def delete_source(
        self, collection: str, source_uri: str, *, keep_version: str | None = None, tenant: str | None = None
    ) -> int:
        with self._lock:
            doomed = [
                k
                for k, c in self._chunks.items()
                if c.collection == collection and c.source_uri == source_uri and c.source_version != keep_version
                and (tenant is None or c.tenant == tenant)
            ]
            for k in doomed:
                del self._chunks[k]
        return len(doomed)

    def delete_collection(self, collection: str) -> int:
        with self._lock:
            doomed = [k for k, c in self._chunks.items() if c.collection == collection]
            for k in doomed:
                del self._chunks[k]
        return len(doomed)

    def search(self, vector: Sequence[float], k: int = 5, filters: SearchFilter | None = None) -> list[SearchHit]:
        with self._lock:
            self.searches += 1
            self.filters_seen.append(filters)
            pool = [
                c
                for c in self._chunks.values()
                if c.embedding is not None
                and (filters is None or filters.collection is None or c.collection == filters.collection)
                and (filters is None or filters.tenant is None or c.tenant == filters.tenant)
            ]
        if not pool:
            return []
        matrix = np.asarray([c.embedding for c in pool], dtype=np.float32)
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        order = sorted(range(len(pool)), key=lambda i: (-float(scores[i]), pool[i].chunk_id))[:k]
        return [
            SearchHit(
                chunk_id=pool[i].chunk_id,
                score=float(scores[i]),
                text=pool[i].text,
                source_uri=pool[i].source_uri,
                source_version=pool[i].source_version,
                page_numbers=pool[i].page_numbers,
                section_title=pool[i].section_title,
                collection=pool[i].collection,
                tenant=pool[i].tenant,
                chunk_index=pool[i].chunk_index,
                metadata=pool[i].metadata,
            )
            for i in order
        ]

    def count(self, collection: str | None = None, source_uri: str | None = None) -> int:
        return sum(
            1
            for c in self._chunks.values()
            if (collection is None or c.collection == collection) and (source_uri is None or c.source_uri == source_uri)
        )

    def health(self) -> dict[str, Any]:
        return {"ok": True, "chunks": len(self._chunks)}

    def iter_chunks(self, collection: str, tenant: str | None = None, batch_size: int = 500) -> Iterator[ChunkRecord]:
        chunks = sorted(
            (c for c in self._chunks.values() if c.collection == collection and (tenant is None or c.tenant == tenant)),
            key=lambda c: (c.source_uri, c.chunk_index, c.chunk_id),
        )
        yield from chunks


TOPICS = [
    "pump", "valve", "reservoir", "turbine", "invoice", "contract", "laptop", "badge", "forklift", "boiler",
    "printer", "server", "ladder", "helmet", "vaccine", "library", "garden", "bridge", "satellite", "engine",
    "harbor", "violin", "glacier", "orchard", "compass", "lantern", "tunnel", "canyon", "meadow", "falcon",
]


def make_chunks(
    n_sources: int = 4,
    per_source: int = 3,
    *,
    collection: str = "handbook",
    tenant: str = "default",
    embedder: Embedder | None = None,
) -> list[ChunkRecord]:
    """Distinct synthetic chunks: each sentence names unique topic words, so a question built
    from a sentence retrieves its own chunk first."""
    embedder = embedder or HashingEmbedder()
    chunks = []
    n = 0
    for s in range(n_sources):
        uri = f"s3://raw/{collection}/doc-{s}.pdf"
        for i in range(per_source):
            a, b = TOPICS[n % len(TOPICS)], TOPICS[(n * 7 + 3) % len(TOPICS)]
            text = (
                f"The {a} unit {n} in building {s} is inspected every {n + 2} weeks by the {b} team. "
                f"Inspection {n} records the {a} pressure and the {b} temperature in logbook {n * 11}. "
                f"Faults found on {a} {n} are escalated to the {b} supervisor within {n + 1} days."
            )
            chunks.append(
                ChunkRecord(
                    chunk_id=chunk_id_for(uri, text, i),
                    collection=collection,
                    tenant=tenant,
                    text=text,
                    source_uri=uri,
                    source_version=f"v{s}",
                    source_sha256=hashlib.sha256(uri.encode()).hexdigest(),
                    file_type="pdf",
                    page_numbers=[i + 1],
                    section_title=f"Section {i}",
                    chunk_index=i,
                    char_count=len(text),
                    embedding_model=embedder.model_id,
                    docmill_version="test",
                )
            )
            n += 1
    vectors = embedder.embed_documents([c.text for c in chunks])
    return [c.model_copy(update={"embedding": v}) for c, v in zip(chunks, vectors, strict=True)]


def stage_of(messages: Sequence[ChatMessage]) -> str:
    system = messages[0].content if messages and messages[0].role == "system" else ""
    if "write training data" in system:
        return "question"
    if "careful assistant" in system:
        return "answer"
    if "quick assistant" in system:
        return "rejected"
    if "grade answers" in system:
        return "judge"
    return "unknown"


class FakeModel:
    """Plays every stage from the prompt. Questions quote sentences of the passage, so they
    are answerable and retrieve their source; answers cite [1]; the judge scores answers with a
    citation high and those without low. ``faults`` maps a stage to a list of replies to use
    (in order, corrective retries included) instead of the normal one, e.g.
    ``{"judge": ["not json"]}``."""

    def __init__(self, faults: dict[str, list[str]] | None = None, *, unanswerable_marker: str | None = None) -> None:
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.unanswerable_marker = unanswerable_marker
        self.lock = threading.Lock()
        self.stage_calls: dict[str, int] = {}

    def __call__(self, messages: list[ChatMessage]) -> str:
        stage = stage_of(messages)
        with self.lock:
            self.stage_calls[stage] = self.stage_calls.get(stage, 0) + 1
            queued = self.faults.get(stage)
            if queued:  # corrective retries consume faults too
                return queued.pop(0)
        last = next(m.content for m in reversed(messages) if m.role == "user" and not m.content.startswith("Your previous"))
        if stage == "question":
            return self._questions(last)
        if stage == "answer":
            first = re.search(r"\[1\][^\n]*\n(.+)", last)
            fact = first.group(1).split(". ")[0] if first else "no context"
            return f"According to the documents, {fact.strip().rstrip('.')} [1]."
        if stage == "rejected":
            return "It probably depends on local rules; check with your manager."
        if stage == "judge":
            answer = last.split("Answer to grade:", 1)[-1]
            question = last.split("Question:", 1)[-1].split("Answer to grade:", 1)[0]
            answerable = not (self.unanswerable_marker and self.unanswerable_marker in question)
            if "[1]" in answer:
                return json.dumps({"relevance": 5, "groundedness": 5, "helpfulness": 4, "answerable": answerable, "reason": "cited"})
            return json.dumps({"relevance": 3, "groundedness": 1, "helpfulness": 2, "answerable": answerable, "reason": "vague"})
        raise AssertionError(f"FakeModel: unknown stage for prompt {messages[0].content[:80]!r}")

    @staticmethod
    def _questions(prompt: str) -> str:
        passage = prompt.split('"""')[1].strip()
        n = int(re.search(r"Write (\d+) item", prompt).group(1))
        types = re.search(r"in this order: (.+?)\.\s*$", prompt, re.S).group(1).split(", ")
        sentences = [s.strip().rstrip(".") for s in passage.split(". ") if s.strip()]
        items = []
        for i in range(n):
            sentence = sentences[i % len(sentences)]
            items.append(
                {
                    "type": types[i % len(types)],
                    "instruction": f"Question {i} about this: what does the handbook say here: {sentence}?",
                    "input": "",
                    "output": sentence,
                }
            )
        return json.dumps(items)


def make_record(
    rid: str,
    question: str,
    *,
    chosen: str = "The pump is inspected every two weeks by the valve team.",
    rejected: str = "Probably monthly.",
    chosen_scores: tuple[int, int, int] = (5, 5, 5),
    rejected_scores: tuple[int, int, int] = (2, 1, 2),
    answerable: bool = True,
    source_uri: str = "s3://raw/doc-0.pdf",
    order: tuple[int, int, int] = (0, 0, 0),
) -> Any:
    """A GeneratedRecord with just the fields curation and assembly look at set meaningfully."""
    from docmill.generation.models import GeneratedRecord, JudgeScores, SourceRef

    def scores(t: tuple[int, int, int], ans: bool) -> JudgeScores:
        return JudgeScores(relevance=t[0], groundedness=t[1], helpfulness=t[2], answerable=ans, score=round(sum(t) / 3, 4))

    return GeneratedRecord(
        id=rid,
        collection="handbook",
        question_type="factual",
        instruction=question,
        chosen=chosen,
        rejected=rejected,
        rejected_strategy="no_context",
        source=SourceRef(chunk_id=f"chunk-{rid}", source_uri=source_uri),
        judge_chosen=scores(chosen_scores, answerable),
        judge_rejected=scores(rejected_scores, answerable),
        model_id="test",
        order=list(order),
    )
