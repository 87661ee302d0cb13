"""Build the CDK app: read the stage config from context, compose the stack, apply cdk-nag."""

from __future__ import annotations

import json
import os
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra import paths
from infra.config import StageConfig, stage_config_from_context
from infra.nag import apply_suppressions
from infra.stacks.pipeline import DocmillStack


def cdk_json_context(**overrides: Any) -> dict[str, Any]:
    """The context `npx cdk` would pass (cdk.json), for building the app in-process (tests, docmill dev)."""
    context = json.loads((paths.REPO_ROOT / "cdk.json").read_text()).get("context", {})
    context.update(overrides)
    return context


def add_stack(app: cdk.App, cfg: StageConfig, *, nag: bool = True) -> DocmillStack:
    """One docmill stack for ``cfg`` in ``app`` (several stages can share one app)."""
    account = cfg.account or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = cfg.region or os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if (account or region) else None
    stack = DocmillStack(app, cfg.stack_name, config=cfg, env=env)
    cdk.Tags.of(stack).add("project", cfg.project)
    cdk.Tags.of(stack).add("stage", cfg.stage)
    if nag:
        apply_suppressions(stack)
    return stack


def add_nag(app: cdk.App) -> None:
    """cdk-nag AwsSolutions on every stack of the app; errors fail synthesis."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def build_app(
    context: dict[str, Any] | None = None,
    *,
    config: StageConfig | None = None,
    outdir: str | None = None,
    nag: bool = True,
) -> tuple[cdk.App, DocmillStack]:
    app = cdk.App(context=context or {}, outdir=outdir) if (context or outdir) else cdk.App()
    cfg = config or stage_config_from_context(app.node.try_get_context)
    stack = add_stack(app, cfg, nag=nag)
    if nag:
        add_nag(app)
    return app, stack
