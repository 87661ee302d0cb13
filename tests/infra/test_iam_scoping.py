"""IAM: every statement is scoped to its resources; no wildcard actions on data services."""

from __future__ import annotations

import json

from infra.nag import NO_RESOURCE_LEVEL
from tests.infra.conftest import Synth, as_list, statements

DATA_SERVICES = ("s3:", "es:", "aoss:", "kms:", "sqs:", "sagemaker:", "secretsmanager:", "dynamodb:")
# CDK's own singleton custom-resource functions (bucket notifications, log retention, ...).
CDK_INTERNAL = (
    "BucketNotificationsHandler",
    "AWS679f53fac002430cb0da5b7982bd2287",
    "CustomS3AutoDeleteObjects",
    # aws-cdk-lib's BucketDeployment (web app upload + CloudFront invalidation): its grants are
    # the library's, each acknowledged with a reason in infra/nag.py (DEPLOYMENT_*).
    "CustomCDKBucketDeployment",
    "WebDeployCustomResourceHandler",
)


def _ours(synth: Synth) -> list[tuple[str, dict]]:
    return [(lid, st) for lid, st in statements(synth.template) if not lid.startswith(CDK_INTERNAL)]


def test_no_wildcard_actions_on_data_services(synth: Synth) -> None:
    offenders = [
        (lid, a)
        for lid, st in _ours(synth)
        for a in as_list(st["Action"])
        if a.startswith(DATA_SERVICES) and "*" in a
    ]
    assert offenders == []


def test_resource_star_only_for_apis_without_resource_level_permissions(synth: Synth) -> None:
    offenders = [
        (lid, st["Action"])
        for lid, st in _ours(synth)
        if "*" in as_list(st["Resource"]) and not set(as_list(st["Action"])) <= NO_RESOURCE_LEVEL
    ]
    assert offenders == []


def test_route_reads_raw_but_cannot_write_it(synth: Synth) -> None:
    route = [st for lid, st in statements(synth.template, "IngestionRouteServiceRoleDefaultPolicy")]
    raw_statements = [st for st in route if "StorageRaw" in json.dumps(st["Resource"])]
    actions = {a for st in raw_statements for a in as_list(st["Action"])}
    assert "s3:GetObject" in actions and "s3:ListBucket" in actions
    assert not {a for a in actions if a.startswith(("s3:Put", "s3:Delete"))}


def test_plan_writes_only_under_the_work_prefix(synth: Synth) -> None:
    plan = [st for lid, st in statements(synth.template, "GenerationPlanServiceRoleDefaultPolicy")]
    writes = [st for st in plan if "s3:PutObject" in as_list(st["Action"])]
    assert writes and all(json.dumps(st["Resource"]).endswith('/_work/*"]]}') for st in writes)
    listing = [
        st for st in plan if "s3:ListBucket" in as_list(st["Action"]) and "StorageDatasets" in json.dumps(st)
    ]
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["_work/*"]}}


def test_vector_store_access_is_limited_to_the_docmill_index(synth: Synth) -> None:
    es = [st for lid, st in _ours(synth) if any(a.startswith("es:ESHttp") for a in as_list(st["Action"]))]
    assert es
    for st in es:
        for res in as_list(st["Resource"]):
            text = json.dumps(res)
            assert "/docmill-chunks" in text or "/_cluster/health" in text or text.endswith('/_bulk"]]}'), (
                text
            )
