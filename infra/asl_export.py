"""The synthesised generation state machine as plain ASL, for the local runtime (``docmill dev``).

The CDK template holds the definition as ``Fn::Join`` of JSON text and references (the task
functions' ``Fn::GetAtt [LogicalId, Arn]``, the datasets bucket's ``Ref``, ``AWS::Partition``).
The state machine carries metadata ``docmill:workflow`` naming which logical id is which task, so
this module can substitute ARNs/names of the caller's choice and return the real ASL.

``docmill dev`` runs from an installed package, without infra/: it reads the *portable* ASL that
this module writes into the devtools package (``docmill_devtools/generation.asl.json``), where
the region, account, datasets bucket and task ARNs are ``${...}`` placeholders, and fills them in.
``tests/infra/test_asl_export.py`` fails when that file no longer matches the synthesised stack:

    python -m infra.asl_export --write        # regenerate docmill_devtools/generation.asl.json
    python -m infra.asl_export --region R --datasets-bucket B [--function plan=ARN ...]   # print ASL
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
    from infra.config import stage_config_from_context

    with tempfile.TemporaryDirectory(prefix="docmill-synth-") as out:
        ctx = cdk_json_context(**{"aws:cdk:bundling-stacks": []})
        ctx.update(context or {})
        # A concrete environment: some resources (DynamoDB replicas) cannot render region-agnostic.
        base = stage_config_from_context(ctx.get)
        config = base.model_copy(
            update={"region": base.region or DEFAULT_REGION, "account": base.account or DEFAULT_ACCOUNT}
        )
        app, stack = build_app(ctx, config=config, outdir=out, nag=False)
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


#: placeholders of the portable definition (``docmill_devtools.dev`` substitutes them)
PLACEHOLDER_REGION = "${AWS::Region}"
PLACEHOLDER_ACCOUNT = "${AWS::AccountId}"
PLACEHOLDER_DATASETS_BUCKET = "${DatasetsBucket}"


def placeholder_function(role: str) -> str:
    return "${Function:" + role + "}"


def portable_generation_asl(template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The generation ASL with placeholders instead of account-specific names."""
    return generation_asl(
        template,
        region=PLACEHOLDER_REGION,
        account=PLACEHOLDER_ACCOUNT,
        datasets_bucket=PLACEHOLDER_DATASETS_BUCKET,
        functions={role: placeholder_function(role) for role in TASK_ROLES},
    )


def packaged_asl_path() -> Path:
    return paths.REPO_ROOT / "devtools" / "docmill_devtools" / "generation.asl.json"


def render_portable(asl: Mapping[str, Any]) -> str:
    return json.dumps(asl, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
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
    parser.add_argument("--write", action="store_true", help=f"write the portable ASL to {packaged_asl_path()}")
    args = parser.parse_args(argv)
    functions = dict(item.split("=", 1) for item in args.function)
    unknown = set(functions) - set(TASK_ROLES)
    if unknown:
        parser.error(f"unknown task role(s): {', '.join(sorted(unknown))}")
    template = json.loads(args.template.read_text()) if args.template else None
    if args.write:
        packaged_asl_path().write_text(render_portable(portable_generation_asl(template)))
        return 0
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
