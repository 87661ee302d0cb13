"""The notice board web app on AWS: the Expo web build in a private S3 bucket, served by
CloudFront through origin access control (the bucket is never public), HTTPS only, with
security headers on every response. ``/api/*`` is routed to the chat API when the stack has one,
so the app and its API share one origin (no CORS); ``config.json`` next to the build tells the
app where the API is and how to sign in (the Cognito hosted UI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Duration, Fn, RemovalPolicy, Validations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.config import WebConfig

# react-native-web writes its styles into <style> elements at run time, hence 'unsafe-inline'
# for styles only; scripts come from the bundle alone.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'{connect}; frame-ancestors 'none'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'{form}"
)


class WebApp(Construct):
    """Attributes: ``bucket``, ``distribution``, ``url`` (https://...), ``app_config`` (the JSON
    served as /config.json)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: WebConfig,
        build_dir: Path,
        access_logs: s3.IBucket,
        api_endpoint: str | None = None,
        cognito_domain: str | None = None,
        cognito_client_id: str | None = None,
        removal: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, id)
        auto_delete = removal == RemovalPolicy.DESTROY
        self.bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="web/",
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        # CloudFront standard logs are delivered with ACLs: their own bucket, owner-preferred.
        self.logs = s3.Bucket(
            self,
            "CdnLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(config.log_retention_days))],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )

        cognito = cognito_domain or config.cognito_domain
        client_id = cognito_client_id or config.cognito_client_id
        connect = ""
        if api_endpoint is None and config.api_url:
            connect += f" {config.api_url.rstrip('/')}"
        if cognito:
            connect += f" https://{cognito}"
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="docmill web app: HSTS, CSP, no framing, no sniffing, strict referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, preload=True, override=True
                ),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CSP.format(
                        connect=connect, form=f" https://{cognito}" if cognito else ""
                    ),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override=True
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(protection=True, mode_block=True, override=True),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy", value="camera=(), microphone=(), geolocation=()", override=True
                    )
                ]
            ),
        )

        extra_behaviors: dict[str, cloudfront.BehaviorOptions] = {}
        if api_endpoint is not None:
            # https://<id>.execute-api.<region>.amazonaws.com -> the host name
            api_host = Fn.select(2, Fn.split("/", api_endpoint))
            extra_behaviors["/api/*"] = cloudfront.BehaviorOptions(
                origin=origins.HttpOrigin(api_host, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                # Everything but Host: API Gateway routes on its own host name.
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                response_headers_policy=headers,
            )

        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn)
            if config.certificate_arn
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="docmill notice board",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                compress=True,
            ),
            additional_behaviors=extra_behaviors,
            price_class=getattr(cloudfront.PriceClass, config.price_class.replace("PriceClass_", "PRICE_CLASS_").upper()),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            domain_names=config.domain_names or None,
            certificate=certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            web_acl_id=config.web_acl_arn,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        self.url = f"https://{config.domain_names[0]}" if config.domain_names else (
            f"https://{self.distribution.distribution_domain_name}"
        )

        # "apiUrl" absent: the app calls its own origin, which CloudFront routes to the API.
        self.app_config: dict[str, Any] = {}
        if api_endpoint is None and config.api_url:
            self.app_config["apiUrl"] = config.api_url
        if cognito and client_id:
            self.app_config["auth"] = {
                "kind": "cognito",
                "domain": cognito,
                "clientId": client_id,
                "scopes": ["openid", "email", "profile"],
                "redirectUri": f"{self.url}/",
            }
        sources = [s3deploy.Source.json_data("config.json", self.app_config)]
        if (build_dir / "index.html").is_file():
            sources.insert(0, s3deploy.Source.asset(str(build_dir)))
        else:
            from aws_cdk import Annotations

            Annotations.of(self).add_warning_v2(
                "docmill:web-build-missing",
                f"{build_dir} has no index.html: only config.json is deployed (run scripts/install.sh first)",
            )
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=sources,
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/index.html", "/config.json"],
            memory_limit=512,
        )
        self._acknowledge(config, has_certificate=certificate is not None)

    def _acknowledge(self, config: WebConfig, *, has_certificate: bool) -> None:
        ack = Validations.of(self.distribution.node.default_child)
        ack.acknowledge(
            Acknowledgment(
                id="AwsSolutions-CFR1",
                reason="An organisation's notice board is read wherever its people are; access is by sign-in "
                "(API key or Cognito), not by country.",
            )
        )
        if not config.web_acl_arn:
            ack.acknowledge(
                Acknowledgment(
                    id="AwsSolutions-CFR2",
                    reason="Static files and a throttled, authorised API; set web.web_acl_arn to attach a "
                    "CLOUDFRONT-scope WAF web ACL (us-east-1) where the stage needs one.",
                )
            )
        if not has_certificate:
            ack.acknowledge(
                Acknowledgment(
                    id="AwsSolutions-CFR4",
                    reason="The default *.cloudfront.net certificate cannot pin a TLS policy; with "
                    "web.domain_names + certificate_arn the distribution uses TLSv1.2_2021.",
                )
            )
        Validations.of(self.logs.node.default_child).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket receives the CloudFront standard logs; logging its own access would loop.",
            )
        )
