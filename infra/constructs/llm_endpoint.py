"""LLM endpoint: Llama 3 8B Instruct on a SageMaker real-time endpoint (LMI container, vLLM
rolling batch), or the name of an endpoint that already exists.

Weights come either from S3 (``llm.model_s3_uri``, uncompressed; no token needed, the
recommended production path) or from the Hugging Face Hub (``llm.model_id``), in which case the
gated-model token is read from the Secrets Manager secret ``llm.hf_token_secret_name`` through a
CloudFormation dynamic reference: the token is never in the template, code or cdk.json.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import LLMEndpointConfig

# AWS Deep Learning Containers registry accounts; every other commercial region uses 763104351884.
_DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "ap-northeast-3": "364406365360",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}
LMI_REPOSITORY = "djl-inference"


def dlc_account(region: str) -> str:
    return _DLC_ACCOUNTS.get(region, "763104351884")


def lmi_image_uri(region: str, tag: str, url_suffix: str = "amazonaws.com") -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/djl-inference:<tag>`` (LMI = DJL Serving + vLLM)."""
    return f"{dlc_account(region)}.dkr.ecr.{region}.{url_suffix}/{LMI_REPOSITORY}:{tag}"


class LlmEndpoint(Construct):
    """Attributes: ``endpoint_name`` (str token), ``endpoint_arn``, ``variant_name``, ``model``,
    ``endpoint_config``, ``endpoint`` (None when using an existing endpoint), ``role``."""

    variant_name = "AllTraffic"

    def __init__(self, scope: Construct, id: str, *, config: LLMEndpointConfig) -> None:
        super().__init__(scope, id)
        self.config = config
        stack = Stack.of(self)
        self.model: sagemaker.CfnModel | None = None
        self.endpoint_config: sagemaker.CfnEndpointConfig | None = None
        self.endpoint: sagemaker.CfnEndpoint | None = None
        self.role: iam.Role | None = None
        if config.mode == "existing":
            if not config.endpoint_name:
                raise ValueError("llm.mode 'existing' needs llm.endpoint_name")  # the config model checks it first
            self.endpoint_name = config.endpoint_name
        else:
            self._create(config, stack)
        # SageMaker lower-cases endpoint names in ARNs (IAM matching is case-sensitive).
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.endpoint_name.lower()
        )

    def _create(self, config: LLMEndpointConfig, stack: Stack) -> None:
        region = stack.region
        if config.image_uri:
            image = config.image_uri
            repo_arn = None
        elif region and not region.startswith("${Token"):
            image = lmi_image_uri(region, config.lmi_image_tag)
            repo_arn = f"arn:{Aws.PARTITION}:ecr:{region}:{dlc_account(region)}:repository/{LMI_REPOSITORY}"
        else:  # environment-agnostic stack: resolve the region at deploy time (DLC account 763104351884)
            image = Fn.join(
                "",
                [
                    "763104351884.dkr.ecr.",
                    Aws.REGION,
                    ".",
                    Aws.URL_SUFFIX,
                    f"/{LMI_REPOSITORY}:{config.lmi_image_tag}",
                ],
            )
            repo_arn = f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:763104351884:repository/{LMI_REPOSITORY}"

        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="docmill LLM endpoint: pull the LMI image, write its logs and metrics, read weights",
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        if repo_arn:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    resources=[repo_arn],
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/Endpoints/*",
                        arn_format=_colon(),
                    )
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints*", "AWS/SageMaker*"]}
                },
            )
        )

        env = {
            "OPTION_ROLLING_BATCH": "vllm",
            "OPTION_MAX_ROLLING_BATCH_SIZE": str(config.max_rolling_batch_size),
            "OPTION_MAX_MODEL_LEN": str(config.max_model_len),
            "OPTION_DTYPE": "fp16",
            "TENSOR_PARALLEL_DEGREE": "max",
        }
        container: dict = {"image": image, "environment": env}
        if config.model_s3_uri:
            bucket, _, prefix = config.model_s3_uri.removeprefix("s3://").partition("/")
            prefix = prefix.rstrip("/") + "/"
            container["model_data_source"] = sagemaker.CfnModel.ModelDataSourceProperty(
                s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                    s3_uri=f"s3://{bucket}/{prefix}",
                    s3_data_type="S3Prefix",
                    compression_type="None",
                ),
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/{prefix}*"],
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}"],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                )
            )
        else:
            env["HF_MODEL_ID"] = config.model_id
            if config.hf_token_secret_name:
                # Dynamic reference: CloudFormation reads Secrets Manager at deploy time.
                env["HF_TOKEN"] = f"{{{{resolve:secretsmanager:{config.hf_token_secret_name}:SecretString}}}}"

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(**container),
            # S3 weights are fetched by SageMaker outside the container, so the container needs no
            # network; a Hub model downloads its weights from huggingface.co at start (checkov
            # CKV_AWS_370 acknowledged for that case in infra/nag.py).
            enable_network_isolation=bool(config.model_s3_uri),
        )
        self.model.node.add_dependency(self.role)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=self.variant_name,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=config.instance_count,
                    instance_type=config.instance_type,
                    initial_variant_weight=1.0,
                    container_startup_health_check_timeout_in_seconds=config.startup_health_check_seconds,
                    model_data_download_timeout_in_seconds=config.startup_health_check_seconds,
                )
            ],
        )
        # A fixed, lower-case name: the ARN is known at synth time and a config change updates in place.
        self.endpoint_name = f"{stack.stack_name}-llm".lower()
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )

    def grant_invoke(self, grantee: iam.IGrantable) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
                resources=[self.endpoint_arn],
            )
        )

    def environment(self) -> dict[str, str]:
        """docmill.config.LLMSettings: ``spec = sagemaker:<endpoint>``."""
        return {
            "DOCMILL_LLM__SPEC": f"sagemaker:{self.endpoint_name}",
            "DOCMILL_LLM__MODEL": self.config.model_id,
        }


def _colon() -> ArnFormat:
    return ArnFormat.COLON_RESOURCE_NAME
