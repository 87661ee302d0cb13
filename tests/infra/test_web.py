"""The web app construct: S3 (private) behind CloudFront with origin access control, HTTPS
only, security headers, config.json pointing the app at its API and sign-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synth


def _one(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = [(lid, r) for lid, r in template["Resources"].items() if r["Type"] == type_]
    assert len(found) == 1, [lid for lid, _ in found]
    return found[0]


def test_given_the_dev_stack_then_the_site_bucket_is_private_and_readable_only_by_its_distribution(synth: Synth) -> None:
    template = synth.template
    dist_lid, _ = _one(template, "AWS::CloudFront::Distribution")
    site = [lid for lid in synth.resources("AWS::S3::Bucket") if lid.startswith("WebSite")][0]
    policy = next(r for r in synth.resources("AWS::S3::BucketPolicy").values()
                  if r["Properties"]["Bucket"] == {"Ref": site})
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # Nothing is granted to everyone; CloudFront reads objects (the other grant is CDK's
    # auto-delete role, which empties the bucket when a dev stack is destroyed).
    assert not [s for s in statements if s["Effect"] == "Allow" and s["Principal"] in ("*", {"AWS": "*"})]
    reads = [s for s in statements if s["Principal"] == {"Service": "cloudfront.amazonaws.com"}]
    assert len(reads) == 1
    assert reads[0]["Action"] == "s3:GetObject"
    source_arn = json.dumps(reads[0]["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert dist_lid in source_arn  # only this distribution, through OAC
    # TLS is enforced on the bucket itself too.
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_given_the_dev_stack_then_cloudfront_uses_oac_https_and_security_headers(synth: Synth) -> None:
    template = synth.template
    _, oac = _one(template, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningProtocol"] == "sigv4"
    _, dist = _one(template, "AWS::CloudFront::Distribution")
    config = dist["Properties"]["DistributionConfig"]
    origin = next(o for o in config["Origins"] if o["Id"] == config["DefaultCacheBehavior"]["TargetOriginId"])
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""  # no legacy OAI
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    assert "Logging" in config
    # No distribution-wide error pages: they would turn the API's JSON 404s into index.html.
    assert "CustomErrorResponses" not in config

    _, headers = _one(template, "AWS::CloudFront::ResponseHeadersPolicy")
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": _one(template, "AWS::CloudFront::ResponseHeadersPolicy")[0]}
    security = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ContentTypeOptions"]["Override"] is True
    csp = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp


def test_given_the_dev_stack_then_the_build_and_config_json_are_deployed_and_the_url_is_output(synth: Synth) -> None:
    _, deploy = _one(synth.template, "Custom::CDKBucketDeployment")
    assert deploy["Properties"]["DistributionPaths"] == ["/index.html", "/config.json"]
    assert "WebAppUrl" in synth.template["Outputs"]


def test_given_the_chat_api_then_the_app_calls_it_on_its_own_origin_and_signs_in_with_the_hosted_ui(synth: Synth) -> None:
    template = synth.template
    dist_lid, dist = _one(template, "AWS::CloudFront::Distribution")
    behaviors = dist["Properties"]["DistributionConfig"]["CacheBehaviors"]
    assert [b["PathPattern"] for b in behaviors] == ["/api/*"]
    api_lid, _ = _one(template, "AWS::ApiGatewayV2::Api")
    assert api_lid in json.dumps(dist["Properties"]["DistributionConfig"]["Origins"])
    _, domain = _one(template, "AWS::Cognito::UserPoolDomain")
    assert "Domain" in domain["Properties"]
    _, client = _one(template, "AWS::Cognito::UserPoolClient")
    callbacks = json.dumps(client["Properties"]["CallbackURLs"])
    assert dist_lid in callbacks and "localhost" in callbacks
    web = synth.stack.web
    assert web.app_config["auth"]["kind"] == "cognito"
    assert "apiUrl" not in web.app_config


@pytest.fixture(scope="module")
def with_api(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A stack composing the construct with an API and Cognito, the way the chat API stack does."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from infra.config import WebConfig
    from infra.constructs.web import WebApp

    build = tmp_path_factory.mktemp("dist")
    (build / "index.html").write_text("<!doctype html><title>t</title>")
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path_factory.mktemp("out")))
    stack = cdk.Stack(app, "web-variant", env=cdk.Environment(account="123456789012", region="us-east-1"))
    logs = s3.Bucket(stack, "Logs")
    web = WebApp(stack, "Web", config=WebConfig(), build_dir=Path(build), access_logs=logs,
                 api_endpoint="https://abc123.execute-api.us-east-1.amazonaws.com",
                 cognito_domain="acme.auth.us-east-1.amazoncognito.com", cognito_client_id="client-1")
    return {"template": app.synth().get_stack_by_name("web-variant").template, "web": web}


def test_given_an_api_then_api_paths_go_to_it_uncached_over_https(with_api: dict[str, Any]) -> None:
    _, dist = _one(with_api["template"], "AWS::CloudFront::Distribution")
    config = dist["Properties"]["DistributionConfig"]
    (api,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/api/*"]
    assert api["ViewerProtocolPolicy"] == "https-only"
    assert api["AllowedMethods"] == ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    api_origin = next(o for o in config["Origins"] if o["Id"] == api["TargetOriginId"])
    assert api_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert "ResponseHeadersPolicyId" in api


def test_given_cognito_then_config_json_names_the_hosted_ui_and_the_csp_allows_it(with_api: dict[str, Any]) -> None:
    web = with_api["web"]
    assert "apiUrl" not in web.app_config  # same origin: CloudFront routes /api/*
    auth = web.app_config["auth"]
    assert auth["kind"] == "cognito"
    assert auth["domain"] == "acme.auth.us-east-1.amazoncognito.com"
    assert auth["clientId"] == "client-1"
    _, headers = _one(with_api["template"], "AWS::CloudFront::ResponseHeadersPolicy")
    csp = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert "connect-src 'self' https://acme.auth.us-east-1.amazoncognito.com" in csp["ContentSecurityPolicy"]


def test_given_a_domain_without_a_certificate_then_the_config_is_refused() -> None:
    from pydantic import ValidationError

    from infra.config import WebConfig

    with pytest.raises(ValidationError, match="certificate_arn"):
        WebConfig(domain_names=["board.example.org"])
