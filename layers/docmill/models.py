"""Records that cross module boundaries: chunks with lineage, per-file results, run reports."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

FileStatus = Literal["ok", "failed", "skipped"]


def chunk_id_for(source_uri: str, text: str, index: int) -> str:
    """Stable id: the same source, content and position always give the same id."""
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return hashlib.sha256(f"{source_uri}\n{content_hash}\n{index}".encode()).hexdigest()[:32]


class ChunkRecord(BaseModel):
    """One chunk of one source version, as written to chunks JSONL and indexed."""

    chunk_id: str
    collection: str
    tenant: str = "default"
    text: str
    embedding: list[float] | None = None
    source_uri: str
    source_version: str | None = None
    source_sha256: str
    file_type: str
    page_numbers: list[int] = Field(default_factory=list)
    section_title: str | None = None
    element_ids: list[str] = Field(default_factory=list)
    chunk_index: int
    char_count: int
    embedding_model: str | None = None
    docmill_version: str
    # Connector metadata (source type, source id/url, title, author, modified) travels here.
    metadata: dict[str, Any] = Field(default_factory=dict)


class FileResult(BaseModel):
    """What happened to one source file in one run."""

    source: str
    status: FileStatus
    reason: str | None = None
    error_code: str | None = None
    file_type: str | None = None
    pages: int | None = None
    elements: int = 0
    chunks: int = 0
    bytes: int | None = None
    sha256: str | None = None
    version: str | None = None
    seconds: float = 0.0
    outputs: dict[str, str] = Field(default_factory=dict)
    # Seconds per phase: checks, partition, clean, chunk, embed, write, index.
    phases: dict[str, float] = Field(default_factory=dict)


class RunTotals(BaseModel):
    files: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    pages: int = 0
    elements: int = 0
    chunks: int = 0
    seconds: float = 0.0
    # Seconds per phase summed over files. Workers run side by side, so the sum can exceed
    # ``seconds`` (the wall time); checks and partition run in workers, the rest in the parent.
    phases: dict[str, float] = Field(default_factory=dict)


PHASES = ("checks", "partition", "clean", "chunk", "embed", "write", "index")


class IngestReport(BaseModel):
    """The per-run manifest: every file with its status, and the totals."""

    run_id: str
    collection: str
    tenant: str = "default"
    started_at: str
    finished_at: str | None = None
    docmill_version: str
    settings: dict[str, Any] = Field(default_factory=dict)
    files: list[FileResult] = Field(default_factory=list)
    totals: RunTotals = Field(default_factory=RunTotals)
    pruned: list[str] = Field(default_factory=list)  # sources forgotten by --prune: gone at the source

    def summarise(self) -> None:
        t = RunTotals(files=len(self.files))
        for f in self.files:
            setattr(t, f.status, getattr(t, f.status) + 1)
            t.pages += f.pages or 0
            t.elements += f.elements
            t.chunks += f.chunks
            for phase, seconds in f.phases.items():
                t.phases[phase] = t.phases.get(phase, 0.0) + seconds
        t.phases = {p: round(t.phases.get(p, 0.0), 3) for p in PHASES} | {
            p: round(v, 3) for p, v in t.phases.items() if p not in PHASES
        }
        t.seconds = self.totals.seconds
        self.totals = t

    @property
    def all_ok(self) -> bool:
        return all(f.status != "failed" for f in self.files)

    def summary_json(self) -> dict[str, Any]:
        """The stable shape ``--json`` prints."""
        return {
            "run_id": self.run_id,
            "collection": self.collection,
            "files": [
                {
                    "source": f.source,
                    "status": f.status,
                    "reason": f.reason,
                    "pages": f.pages,
                    "chunks": f.chunks,
                    "elements": f.elements,
                    "file_type": f.file_type,
                    "seconds": round(f.seconds, 3),
                    "phases": f.phases,
                }
                for f in self.files
            ],
            "totals": self.totals.model_dump(),
            "pruned": self.pruned,
        }
