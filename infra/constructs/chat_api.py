"""The chat API on AWS: API Gateway (HTTP API) + Cognito JWT authorizer -> one Lambda running the
same ASGI application as ``docmill serve`` (Mangum), with its state in DynamoDB.

* Every route needs a valid Cognito token except ``GET /api/v1/health``. The tenant is a
  custom attribute (``custom:tenant``) that only an administrator can set: the user pool
  client can read it but not write it, so a user cannot move themselves to another tenant.
* Throttling on the stage (rate and burst), per-tenant limits in the function; CORS only for
  the configured web app origins; access logs of every request.
* The function runs the processing image (it embeds questions with the same MiniLM model the
  documents were embedded with), in the VPC next to the vector store.
* State table: partition key = tenant, sort key = ``<kind>#<id>`` (docmill.api.state). The
  process function and ECS task write document status to it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import paths
from infra.config import ChatApiConfig
from infra.constructs.log_groups import LogGroups
from infra.constructs.network import Network
from infra.constructs.runtime_code import RuntimeCode

HEALTH_PATH = "/api/v1/health"


_ARN_FORMAT = ArnFormat.COLON_RESOURCE_NAME


class ChatApi(Construct):
    """Attributes: ``table``, ``user_pool``, ``user_pool_client``, ``function``, ``http_api``,
    ``stage``, ``authorizer``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ChatApiConfig,
        code: RuntimeCode,
        network: Network,
        key: kms.IKey | None,
        log_groups: LogGroups,
        removal: RemovalPolicy,
        tracing: bool,
        common_env: dict[str, str],
        generation: sfn.IStateMachine | None = None,
    ) -> None:
        super().__init__(scope, id)

        # A plain table: a TableV2 (global table) cannot render its SSE replica in a region-agnostic
        # stack, which `python app.py` and `cdk synth` without a configured region produce.
        self.table = dynamodb.Table(
            self,
            "State",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED if key is not None
            else dynamodb.TableEncryption.AWS_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal,
        )

        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,  # administrators create users and set their tenant
            sign_in_aliases=cognito.SignInAliases(email=True, username=True),
            custom_attributes={"tenant": cognito.StringAttribute(min_len=1, max_len=63, mutable=False)},
            password_policy=cognito.PasswordPolicy(min_length=12, require_digits=True, require_lowercase=True,
                                                   require_uppercase=True, require_symbols=True),
            mfa=cognito.Mfa.REQUIRED if config.mfa_required else cognito.Mfa.OPTIONAL,
            feature_plan=cognito.FeaturePlan.PLUS if config.threat_protection else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION
            if config.threat_protection else None,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal,
        )
        cognito.CfnUserPoolGroup(self, "AdminGroup", user_pool_id=self.user_pool.user_pool_id,
                                 group_name=config.admin_group, description="tenant administrators: post notices")
        standard = cognito.StandardAttributesMask(email=True, preferred_username=True)
        self.user_pool_client = self.user_pool.add_client(
            "WebClient",
            generate_secret=False,  # a browser/mobile app cannot keep a secret: PKCE instead
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(flows=cognito.OAuthFlows(authorization_code_grant=True),
                                         callback_urls=config.callback_urls),
            read_attributes=cognito.ClientAttributes().with_standard_attributes(
                email=True, preferred_username=True).with_custom_attributes("tenant"),
            write_attributes=cognito.ClientAttributes().with_standard_attributes(
                email=standard.email, preferred_username=standard.preferred_username),
            prevent_user_existence_errors=True,
        )

        self.log_group = log_groups.create(self, "FunctionLogs", removal=removal)
        env = {
            **common_env,
            "POWERTOOLS_SERVICE_NAME": "chat_api",
            "DOCMILL_API__STATE_TABLE": self.table.table_name,
            "DOCMILL_API__TENANT_CLAIM": config.tenant_claim,
            "DOCMILL_API__ADMIN_GROUP": config.admin_group,
            "DOCMILL_API__RATE_LIMIT_PER_MINUTE": str(config.rate_limit_per_minute),
            "DOCMILL_API__MAX_UPLOAD_MB": str(config.max_upload_mb),
            "DOCMILL_API__CORS_ORIGINS": ",".join(config.cors_origins),
        }
        if generation is not None:
            env["DOCMILL_API__GENERATION_STATE_MACHINE_ARN"] = generation.state_machine_arn
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            description="docmill chat API: the docmill.api ASGI app through Mangum",
            code=lambda_.DockerImageCode.from_ecr(code.image.repository, tag_or_digest=code.image.image_tag,
                                                  cmd=[paths.CHAT_API_CMD]),
            memory_size=config.memory_mb,
            timeout=Duration.seconds(config.timeout_seconds),
            reserved_concurrent_executions=config.reserved_concurrency,
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[network.workload_sg],
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            log_group=self.log_group,
            environment=env,
        )
        target: lambda_.IFunction = self.function
        if config.provisioned_concurrency:
            target = self.function.add_alias("live", provisioned_concurrent_executions=config.provisioned_concurrency)
        # The function's own grants: its state table, and starting/reading generation runs.
        # The calls docmill.api.state makes, on this table only (the data key is granted by the
        # stack with the buckets').
        iam.Grant.add_to_principal(
            grantee=self.function,
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"],
            resource_arns=[self.table.table_arn],
        )
        if generation is not None:
            generation.grant_start_execution(self.function)
            self.function.add_to_role_policy(iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[_executions_of(generation)],
            ))

        self.authorizer = authorizers.HttpUserPoolAuthorizer(
            "CognitoAuthorizer", self.user_pool, user_pool_clients=[self.user_pool_client],
            identity_source=["$request.header.Authorization"],
        )
        cors = None
        if config.cors_origins:
            cors = apigw.CorsPreflightOptions(
                allow_origins=config.cors_origins,
                allow_methods=[apigw.CorsHttpMethod.ANY],
                allow_headers=["Authorization", "Content-Type"],
                max_age=Duration.hours(1),
            )
        self.http_api = apigw.HttpApi(
            self, "Http", description="docmill chat API", cors_preflight=cors, create_default_stage=False,
            default_authorizer=self.authorizer,
        )
        integration = integrations.HttpLambdaIntegration("App", target)
        self.http_api.add_routes(path="/api/{proxy+}", methods=[apigw.HttpMethod.ANY], integration=integration)
        self.http_api.add_routes(path=HEALTH_PATH, methods=[apigw.HttpMethod.GET], integration=integration,
                                 authorizer=apigw.HttpNoneAuthorizer())
        self.access_logs = log_groups.create(self, "AccessLogs", removal=removal)
        self.stage = apigw.HttpStage(
            self, "Stage", http_api=self.http_api, stage_name="$default", auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=config.throttle_rate_per_second,
                                            burst_limit=config.throttle_burst),
        )
        cfn_stage = self.stage.node.default_child
        if not isinstance(cfn_stage, apigw.CfnStage):
            raise TypeError("HttpStage is expected to wrap one CfnStage")
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=(
                '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
                '"time":"$context.requestTime","method":"$context.httpMethod","path":"$context.path",'
                '"status":"$context.status","latency":"$context.responseLatency",'
                '"tenant":"$context.authorizer.claims.custom:tenant","error":"$context.error.message",'
                '"authorizerError":"$context.authorizer.error"}'
            ),
        )

    @property
    def url(self) -> str:
        return self.stage.url

    def grant_status_writes(self, grantee: iam.IGrantable) -> None:
        """The pipeline (process function, ECS task) updates document status records."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["dynamodb:GetItem", "dynamodb:PutItem"],
            resource_arns=[self.table.table_arn],
        )

    def status_environment(self) -> dict[str, str]:
        return {"DOCMILL_API__STATE_TABLE": self.table.table_name}


def _executions_of(machine: sfn.IStateMachine) -> str:
    """Execution ARNs of one state machine: ``...:execution:<machine name>:*``."""
    stack = Stack.of(machine)
    name = stack.split_arn(machine.state_machine_arn, _ARN_FORMAT).resource_name
    return stack.format_arn(service="states", resource="execution", resource_name=f"{name}:*",
                            arn_format=_ARN_FORMAT)


