"""One CDK synthesis per test session, shared by every infra test.

The app holds the real dev stack (from cdk.json, cdk-nag on) plus two small variant stacks that
exercise configuration branches the dev stage does not take (Serverless vector store, existing /
S3-weights LLM endpoints). All are synthesised in the same ``app.synth()`` call.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class Synth:
    stack: Any  # DocmillStack
    template: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    report: dict[str, Any]
    outdir: Path

    def resources(self, type_: str, template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        tpl = template or self.template
        return {lid: r for lid, r in tpl["Resources"].items() if r["Type"] == type_}

    def logical_id(self, construct: Any) -> str:
        return self.stack.resolve(
            construct.node.default_child.logical_id
            if hasattr(construct.node, "default_child") and construct.node.default_child is not None
            else construct.logical_id
        )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam

    from infra.app import build_app, cdk_json_context
    from infra.config import LLMEndpointConfig, VectorStoreConfig, stage_config_from_context
    from infra.constructs.llm_endpoint import LlmEndpoint
    from infra.constructs.log_groups import LogGroups
    from infra.constructs.network import Network
    from infra.constructs.storage import Storage
    from infra.constructs.vector_search import VectorSearchDomain

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = cdk_json_context(
        **{
            "aws:cdk:bundling-stacks": [],
            # One scheduled source, so the session synth covers the connectors wiring too.
            "docmill:connectors": [{"name": "handbook", "schedule": "rate(1 hour)"}],
        }
    )
    base = stage_config_from_context(context.get)
    config = base.model_copy(update={"account": ACCOUNT, "region": REGION})
    app, stack = build_app(context, config=config, outdir=str(outdir))

    env = cdk.Environment(account=ACCOUNT, region=REGION)
    # Serverless vector store with one granted role.
    vs_stack = cdk.Stack(app, "variant-serverless", env=env)
    storage = Storage(vs_stack, "Storage", config=config.storage)
    log_groups = LogGroups(vs_stack, key=storage.key, retention_days=7, removal=cdk.RemovalPolicy.DESTROY)
    network = Network(vs_stack, "Network", config=config.network, log_groups=log_groups)
    vs = VectorSearchDomain(
        vs_stack,
        "VectorStore",
        config=VectorStoreConfig(kind="serverless"),
        network=network,
        key=storage.key,
        log_groups=log_groups,
        removal=cdk.RemovalPolicy.DESTROY,
    )
    reader = iam.Role(vs_stack, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    vs.grant_read_write(reader)
    vs.finalize()
    # LLM endpoint variants: S3 weights (no token) and an existing endpoint.
    llm_stack = cdk.Stack(app, "variant-llm", env=env)
    s3_llm = LlmEndpoint(
        llm_stack, "S3Weights", config=LLMEndpointConfig(model_s3_uri="s3://weights-bucket/llama3/")
    )
    existing = LlmEndpoint(
        llm_stack, "Existing", config=LLMEndpointConfig(mode="existing", endpoint_name="My-Endpoint")
    )
    caller = iam.Role(llm_stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    existing.grant_invoke(caller)
    assert s3_llm.endpoint is not None
    # The app-wide cdk-nag plugin checks the variants too; they get the same classifier.
    from infra.nag import apply_suppressions

    apply_suppressions(vs_stack)
    apply_suppressions(llm_stack)

    assembly = app.synth()
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"pluginReports": []}
    return Synth(
        stack=stack,
        template=assembly.get_stack_by_name(stack.stack_name).template,
        variants={
            name: assembly.get_stack_by_name(name).template for name in ("variant-serverless", "variant-llm")
        },
        report=report,
        outdir=outdir,
    )


def statements(template: dict[str, Any], logical_id_prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(policy logical id, statement) for every identity policy statement in a template."""
    out = []
    for lid, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy" and lid.startswith(logical_id_prefix):
            out += [(lid, st) for st in res["Properties"]["PolicyDocument"]["Statement"]]
        if res["Type"] == "AWS::IAM::Role" and lid.startswith(logical_id_prefix):
            for pol in res["Properties"].get("Policies", []):
                out += [(lid, st) for st in pol["PolicyDocument"]["Statement"]]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
