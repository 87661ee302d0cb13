"""The environment contract of each deployed function: what the stack must set, nothing else.

Each Lambda and the ECS processing task has its own model whose fields are the exact variable
names (after aws-lambda-handler-cookbook's ``service/handlers/models/env_vars.py``). At cold start
the handler validates its environment against its model (``load_environment``): a missing
required variable, a bad value or an unknown ``DOCMILL_``/``POWERTOOLS_`` variable (a misspelling
the stack or an operator introduced) fails the start with a message naming each one, instead of
being dropped silently. ``tests/infra/test_environment_contracts.py`` feeds every synthesised
function's ``Environment`` into its model.

Only the variables this project owns are checked (prefixes ``DOCMILL_`` and ``POWERTOOLS_``): the
Lambda runtime adds its own (``AWS_REGION``, ``_HANDLER``, ...), which are none of ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from docmill.config import Settings
from docmill.errors import ConfigurationError

OWNED_PREFIXES = ("DOCMILL_", "POWERTOOLS_")


class FunctionEnvironment(BaseModel):
    """What every docmill function is given: observability, workspace, stores, index, LLM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    POWERTOOLS_SERVICE_NAME: str
    POWERTOOLS_METRICS_NAMESPACE: str
    POWERTOOLS_LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    DOCMILL_HOME: str
    DOCMILL_STORE: Literal["local", "opensearch", "none"]
    DOCMILL_AWS__RAW_BUCKET: str
    DOCMILL_AWS__PROCESSED_BUCKET: str
    DOCMILL_AWS__DATASETS_BUCKET: str
    DOCMILL_AWS__WORK_PREFIX: str
    DOCMILL_LLM__SPEC: str
    DOCMILL_LLM__MODEL: str | None = None
    DOCMILL_OPENSEARCH__URL: str | None = None
    DOCMILL_OPENSEARCH__INDEX: str | None = None
    DOCMILL_OPENSEARCH__AUTH: Literal["none", "basic", "sigv4"] | None = None
    DOCMILL_OPENSEARCH__SERVICE: Literal["es", "aoss"] | None = None
    DOCMILL_OPENSEARCH__ENGINE: Literal["faiss", "lucene", "nmslib"] | None = None
    DOCMILL_OPENSEARCH__SPACE_TYPE: Literal["cosinesimil", "innerproduct", "l2"] | None = None
    DOCMILL_OPENSEARCH__M: int | None = None
    DOCMILL_OPENSEARCH__EF_CONSTRUCTION: int | None = None
    DOCMILL_OPENSEARCH__EF_SEARCH: int | None = None

    @model_validator(mode="after")
    def _index_reachable(self) -> FunctionEnvironment:
        if self.DOCMILL_STORE == "opensearch" and not self.DOCMILL_OPENSEARCH__URL:
            raise ValueError("DOCMILL_STORE=opensearch needs DOCMILL_OPENSEARCH__URL")
        return self


class RouteEnvironment(FunctionEnvironment):
    """route: where each object goes. A processing target is required, never a silent default."""

    DOCMILL_AWS__PROCESS_FUNCTION: str
    DOCMILL_AWS__LARGE_FILE_BYTES: int
    DOCMILL_AWS__LARGE_FILE_PAGES: int
    DOCMILL_AWS__INGEST_STATE_MACHINE_ARN: str | None = None
    DOCMILL_AWS__ECS_CLUSTER: str | None = None
    DOCMILL_AWS__ECS_TASK_DEFINITION: str | None = None
    DOCMILL_AWS__ECS_CONTAINER: str | None = None
    DOCMILL_AWS__ECS_SUBNETS: str | None = None
    DOCMILL_AWS__ECS_SECURITY_GROUPS: str | None = None
    DOCMILL_API__STATE_TABLE: str | None = None  # route records refusals for the chat API's status

    @model_validator(mode="after")
    def _large_files_have_a_path(self) -> RouteEnvironment:
        ecs = (self.DOCMILL_AWS__ECS_CLUSTER, self.DOCMILL_AWS__ECS_TASK_DEFINITION)
        if any(ecs) and not all(ecs):
            raise ValueError("DOCMILL_AWS__ECS_CLUSTER and DOCMILL_AWS__ECS_TASK_DEFINITION go together")
        return self


class ProcessEnvironment(FunctionEnvironment):
    """process_document: the container Lambda and the ECS task (same image, same contract)."""

    DOCMILL_API__STATE_TABLE: str | None = None  # records ingest state for the chat API
    # Set per run by route's run_task container overrides and the large-file state machine.
    DOCMILL_OBJECT_BUCKET: str | None = None
    DOCMILL_OBJECT_KEY: str | None = None
    DOCMILL_OBJECT_VERSION_ID: str | None = None


class GenerationEnvironment(FunctionEnvironment):
    """plan, generate_batch, assemble: the generation state machine's tasks."""


class FinetuneEnvironment(FunctionEnvironment):
    """The fine-tuning workflow's functions (evaluate)."""

    DOCMILL_AWS__MODELS_BUCKET: str


class ChatApiEnvironment(FunctionEnvironment):
    """The chat API function."""

    DOCMILL_API__STATE_TABLE: str
    DOCMILL_API__ADMIN_GROUP: str | None = None
    DOCMILL_API__CORS_ORIGINS: str | None = None
    DOCMILL_API__GENERATION_STATE_MACHINE_ARN: str | None = None
    DOCMILL_API__MAX_UPLOAD_MB: float | None = None
    DOCMILL_API__RATE_LIMIT_PER_MINUTE: int | None = None
    DOCMILL_API__TENANT_CLAIM: str | None = None


E = TypeVar("E", bound=FunctionEnvironment)


def owned(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` that are this project's to check."""
    return {k: v for k, v in environ.items() if k.startswith(OWNED_PREFIXES)}


def load_environment(contract: type[E], environ: Mapping[str, str]) -> E:
    """``environ`` validated against ``contract``; ConfigurationError names every problem."""
    try:
        return contract.model_validate(owned(environ))
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "environment"
            if error["type"] == "missing":
                problems.append(f"{where} is required")
            elif error["type"] == "extra_forbidden":
                problems.append(f"{where} is not a variable of this function (misspelt?)")
            else:
                problems.append(f"{where}: {error['msg']}")
        raise ConfigurationError(f"{contract.__name__}: invalid environment: " + "; ".join(problems)) from exc


def settings_from(env: FunctionEnvironment) -> Settings:
    """The library's settings for a validated function environment."""
    nested: dict[str, Any] = {}
    for name, value in env.model_dump(exclude_none=True).items():
        if not name.startswith("DOCMILL_") or name.startswith("DOCMILL_OBJECT_"):
            continue
        path = name.removeprefix("DOCMILL_").lower().split("__")
        target: dict[str, Any] = nested
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return Settings.model_validate(nested)
