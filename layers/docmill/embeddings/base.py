from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence


class Embedder(ABC):
    """Turns texts into unit-length vectors. Implementations: local MiniLM, SageMaker endpoint."""

    model_id: str
    dimension: int

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages (in batches); vectors are L2-normalised so dot product = cosine."""

    def set_threads(self, threads: int) -> None:  # noqa: B027 - optional hook
        """A hint: use this many CPU threads (the ingest pipeline lowers it while workers partition)."""

    def worker_factory(self) -> Callable[[], Embedder] | None:
        """A picklable call that builds this embedder (one thread) inside a worker process, so
        the ingest pipeline can spread embedding over its workers; None keeps it in-process
        (an endpoint, or a model too heavy to load once per worker)."""
        return None

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
