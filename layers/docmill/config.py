"""Typed settings, validated once at the edge (CLI, handler) and passed down as arguments.

Library functions never read ``os.environ``: they take these models (or their fields).
Environment variables use the ``DOCMILL_`` prefix and ``__`` for nesting, e.g.
``DOCMILL_OPENSEARCH__URL=https://...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChunkingOptions(BaseModel):
    strategy: Literal["by_title", "basic"] = "by_title"
    max_characters: int = Field(1000, ge=50)
    new_after_n_chars: int | None = Field(800, ge=1, description="soft limit: start a new chunk after this")
    overlap: int = Field(0, ge=0)
    overlap_all: bool = False
    combine_text_under_n_chars: int | None = Field(200, ge=0, description="merge small sections (by_title)")
    multipage_sections: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ChunkingOptions:
        if self.new_after_n_chars is not None and self.new_after_n_chars > self.max_characters:
            self.new_after_n_chars = self.max_characters
        if self.overlap >= self.max_characters:
            raise ValueError("overlap must be smaller than max_characters")
        if self.combine_text_under_n_chars is not None and self.combine_text_under_n_chars > self.max_characters:
            self.combine_text_under_n_chars = self.max_characters
        return self


class PartitionOptions(BaseModel):
    pdf_strategy: Literal["auto", "fast", "ocr_only"] = "auto"  # auto: fast, OCR when no text layer
    ocr_languages: str = "eng"
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1)
    max_pages: int = Field(5000, ge=1)
    # OCR costs seconds a page (~4.4 s measured on one core): a PDF with no text layer and more
    # pages than this is refused before any page is rendered (thousands of blank pages).
    max_ocr_pages: int = Field(100, ge=1)
    # ZIP containers (DOCX, XLSX, PPTX, ODT, EPUB) are refused on their declared sizes, before
    # anything is inflated: what every member expands to in all, how many times larger than
    # stored one member (of at least 1 MB) becomes, and how many members there are.
    max_unzipped_bytes: int = Field(512 * 1024 * 1024, ge=1)
    max_zip_ratio: float = Field(100.0, ge=1)
    max_zip_members: int = Field(10_000, ge=1)
    clean_headers_footers: bool = True


class IngestOptions(BaseModel):
    partition: PartitionOptions = Field(default_factory=PartitionOptions)
    chunking: ChunkingOptions = Field(default_factory=ChunkingOptions)
    workers: int = Field(0, ge=0, description="parallel partition processes; 0 = one per core")
    # One text per model call: on a CPU nothing is gained by batching (the GEMMs are already
    # tokens x hidden), a batch pads every text to its longest and spills the caches, and the
    # int8 graph's dynamic activation scale becomes one per text, so a text's vector does not
    # depend on its neighbours. Measured on one core: 1.3x batch 8 (float32 and int8 alike),
    # 1.7x batch 32. A GPU or a remote endpoint wants larger batches.
    embed_batch_size: int = Field(1, ge=1)
    # A PDF of at least twice this many pages is partitioned as ranges of this many pages by
    # parallel workers (the result is the same as partitioning it whole); 0 never splits.
    split_pages: int = Field(24, ge=0)
    force: bool = False  # re-process even unchanged files
    # What one file may cost its worker process (docmill.ingest.workers.WorkerPool): wall-clock
    # seconds, and memory in MB above what the worker held when the file started (its process
    # and children, e.g. tesseract). Past either the worker is killed and replaced, and the file
    # fails with the reason. 0 turns a limit off; with both off, small batches run in-process.
    file_timeout_s: float = Field(600.0, ge=0)
    file_memory_mb: int = Field(1024, ge=0)


class OpenSearchSettings(BaseModel):
    url: str | None = None
    index: str = "docmill-chunks"
    auth: Literal["none", "basic", "sigv4"] = "none"
    username: str | None = None
    password: str | None = None
    service: Literal["es", "aoss"] = "es"  # SigV4 service name: managed domain or Serverless
    region: str | None = None
    engine: Literal["faiss", "lucene", "nmslib"] = "faiss"
    space_type: Literal["cosinesimil", "innerproduct", "l2"] = "innerproduct"
    ef_construction: int = 256
    m: int = 16
    ef_search: int = 256
    verify_certs: bool = True
    timeout: int = 30
    bulk_max_bytes: int = 5 * 1024 * 1024
    # Shard layout when docmill creates the index on a domain (None: the cluster's defaults);
    # Serverless manages shards and replicas itself and ignores both.
    shards: int | None = None
    replicas: int | None = None


class LLMSettings(BaseModel):
    spec: str = "local"  # local | openai:URL | sagemaker:ENDPOINT
    model: str | None = None
    api_key: str | None = None
    requests_per_minute: int = 600
    tokens_per_minute: int = 400_000
    concurrency: int = 4
    timeout: float = 120.0
    max_retries: int = 6
    temperature: float = 0.7
    max_tokens: int = 512


class AwsSettings(BaseModel):
    """The event-driven runtime on AWS (``DOCMILL_AWS__*``; names set by infra/ on each function)."""

    raw_bucket: str | None = None
    processed_bucket: str | None = None  # None: outputs go under ``home``
    datasets_bucket: str | None = None
    models_bucket: str | None = None  # fine-tuned adapters, their cards and the job records (jobs/)
    work_prefix: str = "_work/"
    process_function: str | None = None  # container Lambda that processes one small object
    # Process in the router itself instead (docmill dev against an external emulator, tests).
    # Never a fallback: without a process function and without this, routing is an error.
    process_inline: bool = False
    large_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    large_file_pages: int = Field(300, ge=1)
    bytes_per_page_estimate: int = Field(60_000, ge=1, description="page estimate = size / this (paged types)")
    ecs_cluster: str | None = None
    ecs_task_definition: str | None = None
    ecs_container: str = "process"
    ecs_subnets: str = ""  # comma-separated
    ecs_security_groups: str = ""  # comma-separated
    ingest_state_machine_arn: str | None = None
    default_collection: str = "default"

    @property
    def subnet_ids(self) -> list[str]:
        return [s for s in self.ecs_subnets.split(",") if s.strip()]

    @property
    def security_group_ids(self) -> list[str]:
        return [s for s in self.ecs_security_groups.split(",") if s.strip()]


class ApiSettings(BaseModel):
    """The chat API (``docmill serve`` locally, the API function on AWS; ``DOCMILL_API__*``)."""

    max_upload_mb: float = Field(50.0, gt=0, description="largest upload through the API (AWS: presigned beyond)")
    rate_limit_per_minute: int = Field(600, ge=0, description="requests per tenant per minute; 0 = no limit")
    top_k: int = Field(5, ge=1, le=50)
    # MiniLM cosine similarity: unrelated text scores ~0.0-0.2, text on the topic 0.35+.
    min_score: float = Field(0.3, ge=-1.0, le=1.0)
    history_turns: int = Field(6, ge=0, le=50)
    default_collection: str = "default"
    cors_origins: str = ""  # comma-separated
    # AWS
    state_table: str | None = None
    tenant_claim: str = "custom:tenant"
    admin_group: str = "admin"
    generation_state_machine_arn: str | None = None

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCMILL_", env_nested_delimiter="__", extra="ignore")

    home: Path = Path(".docmill")
    tenant: str = "default"
    store: Literal["local", "opensearch", "none"] = "local"
    embedder: str = "minilm"
    # How the local MiniLM runs: CTranslate2 with int8 weights (the default: ~3.1-3.3x the
    # PyTorch model on one core, every corpus chunk within cosine 0.99 of PyTorch's, texts of
    # few distinct tokens in float32), ONNX Runtime with int8 weight MatMuls (~1.5x), ONNX
    # Runtime in float32 (cosine > 0.999), or the PyTorch model itself. All but torch keep
    # torch out of the process: fast cold start, less memory.
    embed_runtime: Literal["ctranslate2-int8", "onnx-int8", "onnx", "torch"] = "ctranslate2-int8"
    # Where converted models (CTranslate2, ONNX) are cached; filled by scripts/install.sh.
    model_cache: Path = Field(default_factory=lambda: Path.home() / ".cache" / "docmill")
    opensearch: OpenSearchSettings = Field(default_factory=OpenSearchSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    ingest: IngestOptions = Field(default_factory=IngestOptions)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    aws_region: str | None = None

    @property
    def vectors_dir(self) -> Path:
        return self.home / "vectors"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; explicit (CLI) values win over it."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
