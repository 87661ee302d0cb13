"""Build the API's services from settings: locally (``docmill serve``) and on AWS (Lambda).

Heavy resources (embedder, vector store, LLM) are built once per process and shared by every
request; tests pass their own (a scripted LLM) through the same functions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from docmill.api.app import ApiServices
from docmill.api.auth import ApiKeyAuth, CognitoClaimsAuth, TenantRateLimiter
from docmill.api.chat import ChatService, ModelResolver, default_resolver
from docmill.api.datasets import DatasetRunner, DatasetService, LocalDatasetRunner, StepFunctionsDatasetRunner
from docmill.api.documents import DocumentService, LocalIntake, RawBucketIntake
from docmill.api.finetune import FinetuneService
from docmill.api.notices import NoticeService
from docmill.api.state import DynamoState, SqliteState
from docmill.api.tenants import TenantRegistry
from docmill.config import Settings
from docmill.embeddings.base import Embedder
from docmill.errors import ConfigurationError
from docmill.llm.base import LLMClient
from docmill.vectorstores.base import VectorStore


def registry_path(home: Path) -> Path:
    return Path(home) / "api" / "tenants.json"


class _Once:
    """A value built on first use, once, whichever thread asks first."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: Any = None
        self._done = False

    def __call__(self) -> Any:
        if not self._done:
            with self._lock:
                if not self._done:
                    self._value = self._build()
                    self._done = True
        return self._value


def _default_embedder(settings: Settings) -> Callable[[], Embedder]:
    def build() -> Embedder:
        from docmill.embeddings import embedder_for

        # The settings' runtime (ONNX by default): chat and search embed queries without torch.
        return embedder_for(settings, batch_size=settings.ingest.embed_batch_size)

    return _Once(build)


def _default_store(settings: Settings) -> Callable[[], VectorStore]:
    def build() -> VectorStore:
        from docmill.vectorstores.factory import open_vector_store

        store = open_vector_store(settings, refresh_writes=True)
        if store is None:
            raise ConfigurationError("the chat API needs a vector index: set the store to local or opensearch")
        return store

    return _Once(build)


def _default_llm(settings: Settings, spec: str | None) -> Callable[[], LLMClient]:
    def build() -> LLMClient:
        from docmill.llm.factory import make_llm

        return make_llm(spec, settings.llm, local_cache_dir=Path(settings.home) / "models")

    return _Once(build)


def build_local_services(
    settings: Settings,
    *,
    llm_spec: str | None = None,
    llm: LLMClient | None = None,
    embedder: Callable[[], Embedder] | None = None,
    vector_store: Callable[[], VectorStore] | None = None,
    resolve_model: ModelResolver | None = None,
    finetune: FinetuneService | None = None,
    web_dir: Path | None = None,
) -> ApiServices:
    from docmill.ingest import Ingestor
    from docmill.storage import LocalStore

    home = Path(settings.home)
    api = settings.api
    state = SqliteState(home / "api" / "state.db")
    get_embedder = embedder or _default_embedder(settings)
    get_store = vector_store or _default_store(settings)
    get_llm: LLMClient | Callable[[], LLMClient] = llm if llm is not None else _default_llm(settings, llm_spec)

    def ingestor_for(tenant: str, collection: str) -> Ingestor:
        return Ingestor(output=LocalStore(home / "tenants" / tenant), collection=collection, tenant=tenant,
                        options=settings.ingest.model_copy(update={"workers": 1}), embedder=get_embedder(),
                        vector_store=get_store())

    intake = LocalIntake(home, state, ingestor_for=ingestor_for)

    def generate(tenant: str, config: Any, out: Path) -> Any:
        from docmill.generation import collection_chunks, run_generation
        from docmill.storage import open_store

        store = get_store()
        chunks = list(collection_chunks(store, config.collection, tenant=tenant))
        if not chunks:
            raise ConfigurationError(f"collection {config.collection!r} has no indexed documents")
        client = get_llm if isinstance(get_llm, LLMClient) else get_llm()
        return run_generation(chunks, config, llm=client, store=store, embedder=get_embedder(), out=open_store(str(out)))

    datasets = LocalDatasetRunner(home, state, generate=generate)
    if finetune is None:  # fine-tunes run in this process, their adapters answer chat by job id
        from docmill.finetune.service import workspace_finetuner
        from docmill.finetune.serving import LocalFinetuneService, tenant_datasets

        finetune = LocalFinetuneService(workspace_finetuner(home, vector_store=get_store), datasets_root=tenant_datasets(home))
    resolver = resolve_model or default_resolver(get_llm)
    if hasattr(finetune, "resolver"):
        resolver = finetune.resolver(resolver)
    chat = ChatService(state, vector_store=get_store, embed_query=lambda text: get_embedder().embed_query(text),
                       resolve_model=resolver, top_k=api.top_k,
                       min_score=api.min_score, history_turns=api.history_turns)
    return ApiServices(
        documents=DocumentService(state, intake, default_collection=api.default_collection),
        chat=chat,
        datasets=DatasetService(state, datasets),
        notices=NoticeService(state),
        auth=ApiKeyAuth(TenantRegistry(registry_path(home))),
        limiter=TenantRateLimiter(api.rate_limit_per_minute),
        finetune=finetune,
        max_upload_bytes=int(api.max_upload_mb * 1024 * 1024),
        cors_origins=api.cors_origin_list,
        web_dir=web_dir,
        health={"store": settings.store},
        closers=[intake.close, state.close],
    )


def build_aws_services(
    settings: Settings,
    *,
    clients: Callable[[str], Any],
    embedder: Callable[[], Embedder] | None = None,
    vector_store: Callable[[], VectorStore | None] | None = None,
    llm: Callable[[], LLMClient] | None = None,
    finetune: FinetuneService | None = None,
) -> ApiServices:
    """The Lambda's services: DynamoDB state, raw-bucket uploads, the generation workflow,
    identity from the Cognito claims that API Gateway verified. ``clients(name)`` is the one
    boto3 client factory (``docmill.aws.client``); the heavy resources come from the
    function's runtime (``docmill.runtime.context``), built once per container."""
    api = settings.api
    if not api.state_table or not settings.aws.raw_bucket:
        raise ConfigurationError("the API function needs DOCMILL_API__STATE_TABLE and DOCMILL_AWS__RAW_BUCKET")
    state = DynamoState(api.state_table, client=clients("dynamodb"))
    get_embedder = embedder or _default_embedder(settings)
    # The runtime's factory may answer None (store "none"); the chat API is configured with one.
    get_store = cast(Callable[[], VectorStore], vector_store or _default_store(settings))
    get_llm = llm or _default_llm(settings, None)
    runner: DatasetRunner = (
        StepFunctionsDatasetRunner(api.generation_state_machine_arn, sfn_client=clients("stepfunctions"))
        if api.generation_state_machine_arn else _NoWorkflow()
    )
    chat = ChatService(state, vector_store=get_store, embed_query=lambda text: get_embedder().embed_query(text),
                       resolve_model=default_resolver(get_llm), top_k=api.top_k, min_score=api.min_score,
                       history_turns=api.history_turns)
    return ApiServices(
        documents=DocumentService(state, RawBucketIntake(settings.aws.raw_bucket, s3_client=clients("s3")),
                                  default_collection=api.default_collection),
        chat=chat,
        datasets=DatasetService(state, runner),
        notices=NoticeService(state),
        auth=CognitoClaimsAuth(tenant_claim=api.tenant_claim, admin_group=api.admin_group),
        # API Gateway throttles the whole API; this is the per-tenant share within one instance.
        limiter=TenantRateLimiter(api.rate_limit_per_minute),
        finetune=finetune,
        # API Gateway refuses bodies over 10 MB and Lambda over 6 MB (less after base64):
        # larger files go through POST /documents/uploads (a presigned S3 POST).
        max_upload_bytes=min(int(api.max_upload_mb * 1024 * 1024), 4 * 1024 * 1024),
        cors_origins=api.cors_origin_list,
        health={"store": settings.store},
    )


class _NoWorkflow(DatasetRunner):
    def start(self, tenant: str, record: dict[str, Any], request: Any) -> dict[str, Any]:
        from docmill.api.errors import NotImplementedYet

        raise NotImplementedYet("dataset generation is not deployed with this API (no generation state machine)")
