"""Typed stage configuration from cdk.json context."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from infra.app import cdk_json_context
from infra.config import IngestionConfig, LLMEndpointConfig, StageConfig, stage_config_from_context


def _cfg(**context: object) -> StageConfig:
    ctx = cdk_json_context(**context)
    return stage_config_from_context(ctx.get)


def test_default_stage_is_dev_from_cdk_json() -> None:
    cfg = _cfg()
    assert cfg.stage == "dev" and cfg.stack_name == "docmill-dev"
    assert cfg.llm.instance_type == "ml.g5.2xlarge"
    assert cfg.vector_store.kind == "domain" and cfg.vector_store.data_nodes == 1


def test_stage_selection_and_json_override_from_the_command_line() -> None:
    cfg = _cfg(
        **{"docmill:stage": "prod", "docmill:override": json.dumps({"generation": {"max_concurrency": 12}})}
    )
    assert cfg.stage == "prod" and cfg.storage.retain_buckets is True
    assert cfg.generation.max_concurrency == 12
    assert cfg.vector_store.dedicated_master_nodes == 3


def test_serverless_stage_uses_an_existing_endpoint() -> None:
    cfg = _cfg(**{"docmill:stage": "serverless"})
    assert cfg.vector_store.kind == "serverless"
    assert (cfg.llm.mode, cfg.llm.endpoint_name) == ("existing", "my-llama3-endpoint")


def test_unknown_stage_and_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        _cfg(**{"docmill:stage": "qa"})
    with pytest.raises(ValidationError):
        _cfg(**{"docmill:override": {"generation": {"max_concurency": 3}}})


def test_invalid_combinations_are_rejected() -> None:
    with pytest.raises(ValidationError, match="ecs_memory_mb"):
        IngestionConfig(ecs_cpu=1024, ecs_memory_mb=16384)
    with pytest.raises(ValidationError, match="endpoint_name"):
        LLMEndpointConfig(mode="existing")
