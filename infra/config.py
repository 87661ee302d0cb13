"""Typed stage configuration for the CDK app, read from ``cdk.json`` context.

``cdk.json`` holds ``docmill:stages`` (one mapping per stage) and ``docmill:stage`` (the default
stage name). ``cdk synth -c docmill:stage=prod`` picks another one; single values can be
overridden with ``-c docmill:override='{"generation": {"max_concurrency": 8}}'`` (a JSON object merged
over the stage). Everything the constructs size, switch on or off, or point at comes from here, so
a construct never reads context itself and tests build configurations directly.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STAGES_KEY = "docmill:stages"
STAGE_KEY = "docmill:stage"
OVERRIDE_KEY = "docmill:override"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Strict):
    # "kms": one customer-managed key (rotated) for all data buckets; "s3": SSE-S3 (cheaper, no key policy).
    encryption: Literal["kms", "s3"] = "kms"
    # Retained buckets survive `cdk destroy`; otherwise they are emptied and deleted with the stack.
    retain_buckets: bool = True
    raw_noncurrent_version_days: int = Field(30, ge=1)
    raw_infrequent_access_days: int = Field(90, ge=30)
    processed_expiration_days: int | None = Field(None, ge=1, description="None: keep processed output")
    access_log_retention_days: int = Field(365, ge=1)
    queue_visibility_timeout_seconds: int = Field(900, ge=30)
    max_receive_count: int = Field(3, ge=1, description="deliveries before a message goes to the DLQ")
    dlq_retention_days: int = Field(14, ge=1, le=14)


class IngestionConfig(_Strict):
    route_memory_mb: int = Field(512, ge=128, le=10240)
    route_timeout_seconds: int = Field(60, ge=1, le=900)
    route_batch_size: int = Field(10, ge=1, le=10000)
    route_reserved_concurrency: int | None = Field(None, ge=1)
    process_memory_mb: int = Field(6144, ge=1024, le=10240)
    process_ephemeral_storage_mb: int = Field(4096, ge=512, le=10240)
    process_timeout_seconds: int = Field(900, ge=60, le=900)
    process_reserved_concurrency: int | None = Field(20, ge=1)
    # Route sends files at or above either threshold to the ECS task instead of the container Lambda.
    large_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    large_file_pages: int = Field(300, ge=1)
    ecs_cpu: int = Field(4096, description="Fargate CPU units")
    ecs_memory_mb: int = Field(16384)
    ecs_ephemeral_storage_gib: int = Field(50, ge=21, le=200)
    # On: large documents go through a small state machine (Choice on size/pages -> container
    # Lambda or ECS runTask.sync, with retries and a tracked outcome); off: route runs the ECS task.
    large_file_workflow: bool = True

    @model_validator(mode="after")
    def _fargate_combination(self) -> IngestionConfig:
        allowed = {
            256: (512, 2048),
            512: (1024, 4096),
            1024: (2048, 8192),
            2048: (4096, 16384),
            4096: (8192, 30720),
            8192: (16384, 61440),
            16384: (32768, 122880),
        }
        if self.ecs_cpu not in allowed:
            raise ValueError(f"ecs_cpu must be one of {sorted(allowed)}")
        low, high = allowed[self.ecs_cpu]
        if not low <= self.ecs_memory_mb <= high:
            raise ValueError(f"ecs_memory_mb for {self.ecs_cpu} CPU units must be in [{low}, {high}]")
        return self


class NetworkConfig(_Strict):
    max_azs: int = Field(2, ge=1, le=3)
    nat_gateways: int = Field(1, ge=1, le=3, description="private subnets reach S3/SageMaker/ECR through NAT")
    flow_log_retention_days: int = Field(30, ge=1)


class VectorStoreConfig(_Strict):
    kind: Literal["domain", "serverless"] = "domain"
    index_name: str = "docmill-chunks"
    dimension: int = Field(384, ge=1)
    engine: Literal["faiss", "lucene", "nmslib"] = "faiss"
    space_type: Literal["cosinesimil", "innerproduct", "l2"] = "innerproduct"
    ef_construction: int = 256
    m: int = 16
    ef_search: int = 256
    shards: int = Field(2, ge=1)
    replicas: int = Field(1, ge=0)
    # managed domain
    engine_version: str = "OpenSearch_2.19"
    data_node_instance_type: str = "r6g.large.search"
    data_nodes: int = Field(2, ge=1)
    dedicated_master_nodes: int = Field(0, ge=0, description="0 or >= 3")
    master_node_instance_type: str = "m6g.large.search"
    volume_size_gib: int = Field(50, ge=10)
    master_user_name: str = "docmill-admin"
    # serverless
    standby_replicas: bool = True

    @model_validator(mode="after")
    def _masters(self) -> VectorStoreConfig:
        if self.dedicated_master_nodes not in (0,) and self.dedicated_master_nodes < 3:
            raise ValueError("dedicated_master_nodes must be 0 or at least 3")
        return self


class LLMEndpointConfig(_Strict):
    # "create": a SageMaker model + endpoint config + endpoint in this stack; "existing": use endpoint_name.
    mode: Literal["create", "existing"] = "create"
    endpoint_name: str | None = None
    instance_type: str = "ml.g5.2xlarge"
    instance_count: int = Field(1, ge=1)
    model_id: str = "meta-llama/Meta-Llama-3-8B-Instruct"
    # s3://bucket/prefix/ of uncompressed weights; when set the container loads these and needs no token.
    model_s3_uri: str | None = None
    # Name of an existing Secrets Manager secret holding the Hugging Face token (gated Llama weights).
    hf_token_secret_name: str | None = None
    # None: the LMI (DJL Serving + vLLM) DLC for the stack's region, see llm_endpoint.lmi_image_uri.
    image_uri: str | None = None
    lmi_image_tag: str = "0.32.0-lmi14.0.0-cu126"
    max_model_len: int = Field(8192, ge=512)
    max_rolling_batch_size: int = Field(32, ge=1)
    startup_health_check_seconds: int = Field(1800, ge=60, le=3600)
    # On-demand USD/hour of instance_type (us-east-1 list price); shown in the stack outputs.
    price_per_hour_usd: float = Field(1.515, ge=0)

    @model_validator(mode="after")
    def _existing_needs_name(self) -> LLMEndpointConfig:
        if self.mode == "existing" and not self.endpoint_name:
            raise ValueError("llm.mode 'existing' needs llm.endpoint_name")
        return self


class GenerationStageConfig(_Strict):
    # Sized to the LLM endpoint: batches in flight at once; each batch holds `batch_size` chunks.
    max_concurrency: int = Field(4, ge=1, le=10000)
    batch_size: int = Field(16, ge=1)
    tolerated_failure_percentage: int = Field(20, ge=0, le=100)
    # The batch manifest plan writes: "json" (one JSON array) is read by both AWS and the moto
    # emulator behind `docmill dev`; "jsonl" (one batch per line) only by AWS, for huge manifests.
    manifest_format: Literal["json", "jsonl"] = "json"
    batch_timeout_seconds: int = Field(900, ge=60, le=900)
    batch_memory_mb: int = Field(4096, ge=1024, le=10240)
    assemble_memory_mb: int = Field(4096, ge=1024, le=10240)
    assemble_timeout_seconds: int = Field(900, ge=60, le=900)
    retry_max_attempts: int = Field(6, ge=0)
    retry_interval_seconds: int = Field(5, ge=1)
    retry_backoff_rate: float = Field(2.0, ge=1.0)
    retry_max_delay_seconds: int = Field(300, ge=1)
    workflow_timeout_hours: int = Field(24, ge=1)


class MonitoringConfig(_Strict):
    enabled: bool = True
    alarm_email: str | None = None
    dlq_depth_threshold: int = Field(1, ge=1)
    failed_files_threshold: int = Field(5, ge=1)
    workflow_failures_threshold: int = Field(1, ge=1)
    endpoint_5xx_threshold: int = Field(5, ge=1)
    endpoint_latency_p90_ms: int = Field(30_000, ge=1)


class ChatApiConfig(_Strict):
    enabled: bool = True
    memory_mb: int = Field(3008, ge=1024, le=10240)
    # API Gateway's HTTP API integration timeout is 30 s: the function must answer within it.
    timeout_seconds: int = Field(29, ge=5, le=29)
    reserved_concurrency: int | None = Field(None, ge=1)
    provisioned_concurrency: int = Field(0, ge=0, description="warm instances (model loaded) kept ready")
    throttle_rate_per_second: float = Field(50, gt=0, description="API-wide steady request rate")
    throttle_burst: int = Field(100, ge=1)
    rate_limit_per_minute: int = Field(120, ge=0, description="per tenant, within one function instance")
    cors_origins: list[str] = Field(default_factory=list, description="web app origins; empty: no CORS")
    callback_urls: list[str] = Field(default_factory=lambda: ["http://localhost:8081/"])
    tenant_claim: str = "custom:tenant"
    admin_group: str = "admin"
    max_upload_mb: float = Field(4, gt=0, le=4)
    mfa_required: bool = False
    threat_protection: bool = Field(False, description="Cognito Plus plan: adaptive auth, compromised credentials")


class WebConfig(_Strict):
    """The notice board web app (frontend/) on S3 behind CloudFront."""

    enabled: bool = True
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    # The API the app calls. When the stack has its own API it is routed by CloudFront under
    # /api/* (same origin, no CORS); otherwise this URL (an API deployed elsewhere) is used.
    api_url: str | None = None
    # Cognito hosted UI (sign in on AWS): the user pool domain and the app client id.
    cognito_domain: str | None = None
    cognito_client_id: str | None = None
    # With the stack's own chat API, its user pool gets a hosted UI domain with this prefix
    # (default: <project>-<stage>-<part of the stack's UUID>, unique per deployment).
    cognito_domain_prefix: str | None = Field(None, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
    # A custom domain: names plus an ACM certificate in us-east-1 (TLS 1.2+ policy); without
    # them the distribution answers on its cloudfront.net name.
    domain_names: list[str] = Field(default_factory=list)
    certificate_arn: str | None = None
    # An AWS WAF web ACL (CLOUDFRONT scope, us-east-1) to attach.
    web_acl_arn: str | None = None
    log_retention_days: int = Field(90, ge=1)

    @model_validator(mode="after")
    def _domain_needs_certificate(self) -> WebConfig:
        if self.domain_names and not self.certificate_arn:
            raise ValueError("web.domain_names needs web.certificate_arn (an ACM certificate in us-east-1)")
        return self


class StageConfig(_Strict):
    stage: str = "dev"
    project: str = "docmill"
    account: str | None = None
    region: str | None = None
    log_retention_days: int = Field(30, ge=1)
    tracing: bool = True
    storage: StorageConfig = Field(default_factory=StorageConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    ingestion: IngestionConfig = Field(default_factory=IngestionConfig)
    vector_store: VectorStoreConfig = Field(default_factory=VectorStoreConfig)
    llm: LLMEndpointConfig = Field(default_factory=LLMEndpointConfig)
    generation: GenerationStageConfig = Field(default_factory=GenerationStageConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    chat_api: ChatApiConfig = Field(default_factory=ChatApiConfig)
    web: WebConfig = Field(default_factory=WebConfig)

    @property
    def stack_name(self) -> str:
        return f"{self.project}-{self.stage}"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _as_obj(value: Any) -> dict[str, Any]:
    # `-c key=value` on the command line arrives as a string; cdk.json values arrive parsed.
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def stage_config_from_context(get: Any) -> StageConfig:
    """Build the config from a context getter (``app.node.try_get_context``)."""
    stages = _as_obj(get(STAGES_KEY))
    name = get(STAGE_KEY) or "dev"
    if stages and name not in stages:
        raise ValueError(f"unknown stage {name!r}; cdk.json defines {sorted(stages)}")
    raw = _merge(dict(stages.get(name, {})), _as_obj(get(OVERRIDE_KEY)))
    raw.setdefault("stage", name)
    return StageConfig.model_validate(raw)
