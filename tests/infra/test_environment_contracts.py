"""Every synthesised docmill function's Environment satisfies its typed contract
(docmill.runtime.environment), so a misspelt or missing variable fails here, not at cold start."""

from __future__ import annotations

from typing import Any

import pytest

from docmill.errors import ConfigurationError
from docmill.runtime.environment import (
    ChatApiEnvironment,
    FinetuneEnvironment,
    FunctionEnvironment,
    GenerationEnvironment,
    ProcessEnvironment,
    RouteEnvironment,
    load_environment,
    settings_from,
)
from tests.infra.conftest import Synth

# POWERTOOLS_SERVICE_NAME (set by the stack on each function) -> the handler's contract
CONTRACTS: dict[str, type[FunctionEnvironment]] = {
    "route": RouteEnvironment,
    "process_document": ProcessEnvironment,
    "process_task": ProcessEnvironment,
    "generation_plan": GenerationEnvironment,
    "generation_batch": GenerationEnvironment,
    "generation_assemble": GenerationEnvironment,
    "chat_api": ChatApiEnvironment,
    "finetune_evaluate": FinetuneEnvironment,
}


def _deployed(value: Any) -> str:
    # CloudFormation fills references (Ref, Fn::GetAtt, Fn::Join) at deploy time: any string will do.
    return value if isinstance(value, str) else "resolved-at-deploy"


def _environments(synth: Synth) -> dict[str, tuple[str, dict[str, str]]]:
    """logical id -> (service name, environment) of every function and container the stack runs."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for lid, fn in synth.resources("AWS::Lambda::Function").items():
        variables = (fn["Properties"].get("Environment") or {}).get("Variables") or {}
        if "POWERTOOLS_SERVICE_NAME" in variables:
            out[lid] = (variables["POWERTOOLS_SERVICE_NAME"], {k: _deployed(v) for k, v in variables.items()})
    for lid, task in synth.resources("AWS::ECS::TaskDefinition").items():
        for container in task["Properties"]["ContainerDefinitions"]:
            variables = {e["Name"]: _deployed(e["Value"]) for e in container.get("Environment", [])}
            if "POWERTOOLS_SERVICE_NAME" in variables:
                out[f"{lid}/{container['Name']}"] = (variables["POWERTOOLS_SERVICE_NAME"], variables)
    return out


def test_given_the_synthesised_stack_then_every_function_environment_satisfies_its_contract(synth: Synth) -> None:
    environments = _environments(synth)
    # Every handler of the stack is covered (CDK's own helper functions set no POWERTOOLS_ variables)
    assert {service for service, _ in environments.values()} >= {
        "route", "process_document", "process_task", "generation_plan", "generation_batch", "generation_assemble",
    }
    for lid, (service, variables) in environments.items():
        assert service in CONTRACTS, f"{lid}: no environment contract for service {service!r}"
        env = load_environment(CONTRACTS[service], variables)
        settings = settings_from(env)
        assert settings.aws.raw_bucket and settings.aws.processed_bucket, lid
    route = next(v for s, v in environments.values() if s == "route")
    assert settings_from(load_environment(RouteEnvironment, route)).aws.process_function


def _route_environment(synth: Synth) -> dict[str, str]:
    return next(v for s, v in _environments(synth).values() if s == "route")


def test_given_a_misspelt_variable_then_the_contract_names_it(synth: Synth) -> None:
    variables = _route_environment(synth)
    variables["DOCMILL_AWS__PROCES_FUNCTION"] = variables.pop("DOCMILL_AWS__PROCESS_FUNCTION")
    with pytest.raises(ConfigurationError) as raised:
        load_environment(RouteEnvironment, variables)
    assert "DOCMILL_AWS__PROCES_FUNCTION is not a variable of this function" in raised.value.message
    assert "DOCMILL_AWS__PROCESS_FUNCTION is required" in raised.value.message


def test_given_the_lambda_runtime_variables_then_only_ours_are_checked(synth: Synth) -> None:
    variables = {**_route_environment(synth), "AWS_REGION": "eu-west-1", "_HANDLER": "handler.handler", "TZ": ":UTC"}
    assert load_environment(RouteEnvironment, variables).DOCMILL_AWS__PROCESS_FUNCTION


def test_given_opensearch_without_an_endpoint_then_the_contract_refuses(synth: Synth) -> None:
    variables = {**_route_environment(synth), "DOCMILL_STORE": "opensearch"}
    variables.pop("DOCMILL_OPENSEARCH__URL", None)
    with pytest.raises(ConfigurationError, match="DOCMILL_OPENSEARCH__URL"):
        load_environment(RouteEnvironment, variables)
