"""The synthesised generation state machine as plain ASL, for the local runtime (``docmill dev``).

The CDK template holds the definition as ``Fn::Join`` of JSON text and references (the task
functions' ``Fn::GetAtt [LogicalId, Arn]``, the datasets bucket's ``Ref``, ``AWS::Partition``).
The state machine carries metadata ``docmill:workflow`` naming which logical id is which task, so
this module can substitute ARNs/names of the caller's choice and return the real ASL:

    from infra.workflow import generation_asl, task_arns
    asl = generation_asl(region="us-east-1", account="123456789012",
                         datasets_bucket="docmill-datasets")            # dict
    task_arns(region="us-east-1", account="123456789012")
    # {"plan": "arn:aws:lambda:us-east-1:123456789012:function:docmill-plan", ...}

``docmill dev`` creates the state machine from ``json.dumps(asl)`` and binds each ARN in
``task_arns(...)`` to the matching in-process handler (functions/generation/<role>.py). Each task
state's ``Resource`` is the function ARN itself (payload-response-only invocation), so the task's
input is the Lambda event and its output is the handler's return value.

Command line: ``python -m infra.workflow [--region R] [--account A] [--datasets-bucket B]
[--function plan=ARN ...] [--template cdk.out/docmill-dev.template.json]`` prints the ASL JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra import paths

METADATA_KEY = "docmill:workflow"
TASK_ROLES = ("plan", "generate_batch", "assemble")
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"  # moto's default account (LocalStack uses 000000000000)


def task_arns(
    *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT, prefix: str = "docmill"
) -> dict[str, str]:
    """Placeholder Lambda ARNs the local runtime registers and binds to in-process handlers."""
    return {
        role: f"arn:aws:lambda:{region}:{account}:function:{prefix}-{role.replace('_', '-')}"
        for role in TASK_ROLES
    }


def _source_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted([paths.REPO_ROOT / "cdk.json", *(paths.REPO_ROOT / "infra").rglob("*.py")]):
        digest.update(str(path.relative_to(paths.REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def synthesize_template(
    *, context: Mapping[str, Any] | None = None, cache_dir: Path | None = None
) -> dict[str, Any]:
    """Synthesise the app in-process (no Docker, no bundling, no cdk-nag) and return the template.

    With ``cache_dir`` the template is cached under a hash of infra/ and cdk.json, so a second
    ``docmill dev`` start skips the ~15 s synth until the infrastructure code changes.
    """
    cache = None
    if cache_dir is not None and not context:
        cache = Path(cache_dir) / f"template-{_source_fingerprint()}.json"
        if cache.exists():
            return json.loads(cache.read_text())
    from infra.app import build_app, cdk_json_context

    with tempfile.TemporaryDirectory(prefix="docmill-synth-") as out:
        ctx = cdk_json_context(**{"aws:cdk:bundling-stacks": []})
        ctx.update(context or {})
        app, stack = build_app(ctx, outdir=out, nag=False)
        assembly = app.synth()
        template = assembly.get_stack_by_name(stack.stack_name).template
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(template))
    return template


def _find_state_machine(template: Mapping[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in template.get("Resources", {}).items():
        meta = (resource.get("Metadata") or {}).get(METADATA_KEY)
        if resource.get("Type") == "AWS::StepFunctions::StateMachine" and meta and meta.get("name") == name:
            return logical_id, resource
    raise LookupError(f"no state machine with {METADATA_KEY}.name == {name!r} in the template")


class _Resolver:
    def __init__(
        self, *, region: str, account: str, refs: Mapping[str, str], arns: Mapping[str, str]
    ) -> None:
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.refs = refs
        self.arns = arns

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Fn::Join":
                sep, parts = arg
                return sep.join(self(p) for p in parts)
            if fn == "Ref":
                if arg in self.pseudo:
                    return self.pseudo[arg]
                if arg in self.refs:
                    return self.refs[arg]
            if fn == "Fn::GetAtt" and arg[1] == "Arn" and arg[0] in self.arns:
                return self.arns[arg[0]]
        raise ValueError(f"the definition references {value!r}, which has no local binding")


def generation_asl(
    template: Mapping[str, Any] | None = None,
    *,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
    datasets_bucket: str = "docmill-datasets",
    functions: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """The generation workflow's ASL with task ARNs and the datasets bucket bound for local use."""
    template = template if template is not None else synthesize_template(cache_dir=cache_dir)
    _, resource = _find_state_machine(template, "generation")
    meta = resource["Metadata"][METADATA_KEY]
    arns = {**task_arns(region=region, account=account), **(functions or {})}
    resolver = _Resolver(
        region=region,
        account=account,
        refs={meta["buckets"]["datasets"]: datasets_bucket},
        arns={logical_id: arns[role] for role, logical_id in meta["tasks"].items()},
    )
    definition = resource["Properties"]["DefinitionString"]
    return json.loads(resolver(definition))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION))
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    parser.add_argument("--datasets-bucket", default="docmill-datasets")
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="ROLE=ARN",
        help=f"override a task ARN; roles: {', '.join(TASK_ROLES)}",
    )
    parser.add_argument("--template", type=Path, help="a synthesised template instead of synthesising now")
    args = parser.parse_args(argv)
    functions = dict(item.split("=", 1) for item in args.function)
    unknown = set(functions) - set(TASK_ROLES)
    if unknown:
        parser.error(f"unknown task role(s): {', '.join(sorted(unknown))}")
    template = json.loads(args.template.read_text()) if args.template else None
    asl = generation_asl(
        template,
        region=args.region,
        account=args.account,
        datasets_bucket=args.datasets_bucket,
        functions=functions,
    )
    json.dump(asl, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
