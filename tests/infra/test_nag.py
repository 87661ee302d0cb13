"""cdk-nag AwsSolutions: zero unacknowledged findings, every acknowledgement with its reason."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from infra.nag import iam5_findings
from tests.infra.conftest import Synth


def test_the_app_synthesises_with_zero_unacknowledged_findings(synth: Synth) -> None:
    # Synthesis raises on any nag error; the report confirms nothing was left over.
    violations = [v for rep in synth.report["pluginReports"] for v in rep.get("violations", [])]
    assert violations == []


def test_every_acknowledgement_states_a_reason(synth: Synth) -> None:
    acks = []
    for template in (synth.template, *synth.variants.values()):
        for resource in template["Resources"].values():
            acks += resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ours = [a for a in acks if a["id"].startswith("AwsSolutions-")]
    assert len(ours) > 20
    for ack in ours:
        assert len(ack["reason"]) >= 40, ack


def test_every_wildcard_in_the_stack_matched_a_justified_pattern(synth: Synth) -> None:
    unexplained = []
    for construct in synth.stack.node.find_all():
        if isinstance(construct, (iam.CfnPolicy, iam.CfnRole)):
            unexplained += [f for f, reason in iam5_findings(synth.stack, construct) if reason is None]
    assert unexplained == []


def test_the_checks_do_run_an_open_bucket_fails_synthesis(tmp_path) -> None:
    # Control: the same plugin set-up rejects an unencrypted, unlogged, non-TLS bucket.
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Open")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="AwsSolutions-S1"):
        app.synth()
