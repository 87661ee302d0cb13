"""cdk-nag (v3, AwsSolutions) acknowledgements: every one names the finding and the reason.

cdk-nag v3 reports through CDK policy validation and is acknowledged with
``Validations.of(construct).acknowledge(id=..., reason=...)``, one finding at a time. IAM wildcard
findings (AwsSolutions-IAM5) are classified statement by statement: a wildcard is acknowledged
only when it matches a known, justified pattern below (object ARNs of one bucket, revisions of
one function/task definition, services without resource-level permissions, ...). Anything else
stays an error, so a new over-broad statement fails synth and the cdk-nag test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import IConstruct

# APIs that do not support resource-level permissions (AWS service authorization reference).
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "logs:DeleteResourcePolicy",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    # runTask.sync polls and stops the task it started; task ARNs are unknown before the run.
    "ecs:DescribeTasks",
    "ecs:StopTask",
}
S3_OBJECT_ACTIONS = re.compile(
    r"^s3:(GetObject|GetObjectVersion|GetObjectAttributes|GetObjectTagging|PutObject|"
    r"PutObjectTagging|AbortMultipartUpload|ListMultipartUploadParts|DeleteObject|"
    r"DeleteObjectVersion)$"
)
ES_HTTP = re.compile(r"^es:ESHttp(Get|Head|Post|Put|Delete|Patch)$")

# Region/account render as pseudo-parameters in environment-agnostic stacks, literally otherwise.
_R = r"(<AWS::Region>|[a-z]{2}(-[a-z]+)+-\d)"
_A = r"(<AWS::AccountId>|\d{12})"

RESOURCE_REASONS: list[tuple[re.Pattern[str], re.Pattern[str] | None, str]] = [
    # (rendered resource, allowed actions (all must match), reason)
    (
        re.compile(r"^<(Storage(Raw|Processed|Datasets)|FineTuningModels)[0-9A-F]{8}\.Arn>/(_work/)?\*$"),
        S3_OBJECT_ACTIONS,
        "Object ARNs inside one docmill bucket (prefix-scoped where the role only needs _work/); every S3 "
        "action is listed explicitly.",
    ),
    (
        re.compile(rf"^arn:<AWS::Partition>:logs:{_R}:{_A}:log-group:/aws/sagemaker/TrainingJobs:\*$"),
        re.compile(r"^logs:(CreateLogGroup|CreateLogStream|PutLogEvents|DescribeLogStreams)$"),
        "SageMaker writes each training job's log streams into this one log group (stream names are per job).",
    ),
    (
        re.compile(rf"^arn:<AWS::Partition>:sagemaker:{_R}:{_A}:training-job/docmill-\*$"),
        re.compile(r"^sagemaker:(CreateTrainingJob|DescribeTrainingJob|StopTrainingJob|AddTags)$"),
        "Fine-tune training jobs are named per job at run time (docmill-<tenant>-<job>); only that prefix.",
    ),
    (
        re.compile(r"^arn:<AWS::Partition>:s3:::<StorageDatasets[0-9A-F]{8}>/\*$"),
        S3_OBJECT_ACTIONS,
        "The Distributed Map reads the batch manifest (key known only at run time) and its "
        "ResultWriter writes the results, both in the datasets bucket.",
    ),
    (
        re.compile(r"^<[A-Za-z0-9]+\.Arn>:\*$"),
        re.compile(r"^lambda:InvokeFunction$"),
        "Versions and aliases of one function: Step Functions and async invocations may target "
        "qualified ARNs.",
    ),
    (
        re.compile(r"^<VectorStoreDomain[0-9A-F]{8}\.Arn>/[a-z0-9-]+/\*$"),
        ES_HTTP,
        "Documents and _search/_bulk paths of the one docmill index on the domain.",
    ),
    (
        re.compile(rf"^arn:<AWS::Partition>:states:{_R}:{_A}:execution:.*GenerationStateMachine.*$"),
        re.compile(r"^states:(DescribeExecution|StopExecution|RedriveExecution)$"),
        "Child executions of this state machine's Distributed Map; their names are generated at run time.",
    ),
    (
        re.compile(r"^arn:.*IngestionProcessTask[0-9A-F]{8}.*:\*$"),
        re.compile(r"^ecs:RunTask$"),
        "Revisions of the one processing task definition (runTask resolves the family to its "
        "latest revision).",
    ),
    (
        re.compile(rf"^arn:<AWS::Partition>:ecs:{_R}:{_A}:task/<IngestionCluster[0-9A-F]{{8}}>/\*$"),
        re.compile(r"^ecs:DescribeTasks$"),
        "Tasks of the docmill cluster that route started; their ids are only known at run time.",
    ),
    (
        re.compile(r"^arn:<AWS::Partition>:s3:::[a-z0-9.-]+/[^*]*\*$"),
        re.compile(r"^s3:GetObject$"),
        "Model weights under the configured s3://bucket/prefix/ (llm.model_s3_uri), read by the "
        "endpoint role.",
    ),
    (
        re.compile(rf"^arn:<AWS::Partition>:logs:{_R}:{_A}:log-group:/aws/sagemaker/Endpoints/\*$"),
        re.compile(r"^logs:(CreateLogGroup|CreateLogStream|PutLogEvents|DescribeLogStreams)$"),
        "SageMaker writes each endpoint's logs to a log group named after the endpoint under this prefix.",
    ),
]
ACTION_REASONS: list[tuple[re.Pattern[str], str]] = [

    # CDK's own AwsCustomResource singleton (OpenSearch log-group policy + domain KMS key lookup).
    (
        re.compile(r"^kms:(Describe|List)\*$"),
        "CDK-managed custom resource reads metadata of the one data key (statement scoped to that key).",
    ),
]
# aws-cdk-lib's BucketDeployment singleton (uploads the web app's build into its bucket and
# invalidates CloudFront): its grants are generated by the library, read-only on the CDK asset
# bucket and write on the one site bucket. Only statements of that singleton's role match these.
BUCKET_DEPLOYMENT = re.compile(r"Custom::CDKBucketDeployment|/Web/Deploy/CustomResourceHandler/")
DEPLOYMENT_ACTIONS = re.compile(r"^s3:(GetObject|GetBucket|List|Abort|DeleteObject)\*$")
DEPLOYMENT_RESOURCES: list[tuple[re.Pattern[str], re.Pattern[str] | None, str]] = [
    (
        re.compile(r"^<Web[A-Za-z0-9]*Site[0-9A-F]{8}\.Arn>/\*$"),
        None,
        "Objects of the web app's site bucket, which the deployment replaces with each build.",
    ),
    (
        re.compile(rf"^arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-{_A}-{_R}/\*$"),
        re.compile(r"^s3:(GetObject\*|GetBucket\*|List\*)$"),
        "Read-only on the CDK bootstrap asset bucket, where the zipped web build is staged.",
    ),
    (
        re.compile(r"^\*$"),
        re.compile(r"^cloudfront:(GetInvalidation|CreateInvalidation)$"),
        "Invalidating the web app's distribution after a deploy; the distribution id is only an input "
        "of the custom resource, so CDK grants it on '*'.",
    ),
]
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "AWS managed policy for Lambda: write the function's own CloudWatch logs.",
    "AWSLambdaVPCAccessExecutionRole": "AWS managed policy for VPC Lambdas: manage the function's ENIs.",
}


def render(value: Any) -> str:
    """A CloudFormation value the way cdk-nag prints it in finding ids."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(render(p) for p in parts)
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Sub" and isinstance(arg, str):
            # cdk-nag prints ${Param} inside a substitution as <Param> (region-agnostic asset buckets).
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", arg)
    return json.dumps(value, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(stack: Stack, construct: IConstruct) -> Iterable[dict[str, Any]]:
    docs: list[Any]
    if isinstance(construct, iam.CfnPolicy):
        docs = [construct.policy_document]
    elif isinstance(construct, iam.CfnRole):
        inline: Any = construct.policies or []  # PolicyProperty objects or plain dicts
        docs = [p.policy_document if hasattr(p, "policy_document") else p["policyDocument"] for p in inline]
    else:
        return []
    out = []
    for doc in docs:
        resolved = stack.resolve(doc)
        out.extend(resolved.get("Statement", []))
    return out


def iam5_findings(stack: Stack, construct: IConstruct) -> list[tuple[str, str | None]]:
    """(finding id, reason or None) for each wildcard in the construct's policy statements."""
    found: list[tuple[str, str | None]] = []
    deployment = BUCKET_DEPLOYMENT.search(construct.node.path) is not None
    for st in _statements(stack, construct):
        if st.get("Effect", "Allow") != "Allow":
            continue
        actions = [a for a in _as_list(st.get("Action", [])) if isinstance(a, str)]
        for action in actions:
            if "*" in action:
                reason = next((r for pat, r in ACTION_REASONS if pat.match(action)), None)
                if reason is None and deployment and DEPLOYMENT_ACTIONS.match(action):
                    reason = "aws-cdk-lib's BucketDeployment grants on the asset and site buckets only."
                found.append((f"AwsSolutions-IAM5[Action::{action}]", reason))
        for res in _as_list(st.get("Resource", [])):
            rendered = render(res)
            if "*" not in rendered:
                continue
            reason = None
            if deployment:
                reason = next(
                    (why for pattern, allowed, why in DEPLOYMENT_RESOURCES
                     if pattern.match(rendered) and (allowed is None or all(allowed.match(a) for a in actions))),
                    None,
                )
            if reason is not None:
                pass
            elif rendered == "*":
                if actions and all(a in NO_RESOURCE_LEVEL for a in actions):
                    reason = (
                        "These APIs do not support resource-level permissions (X-Ray, CloudWatch Logs "
                        "vended delivery, ECR auth token, PutMetricData, runTask.sync task polling)."
                    )
            else:
                for pattern, allowed, why in RESOURCE_REASONS:
                    if pattern.match(rendered) and (
                        allowed is None or all(allowed.match(a) for a in actions)
                    ):
                        reason = why
                        break
            found.append((f"AwsSolutions-IAM5[Resource::{rendered}]", reason))
    return found


def _ack(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def apply_suppressions(stack: Stack) -> list[str]:
    """Acknowledge justified findings; return the wildcard findings left unacknowledged (for tests)."""
    config = getattr(stack, "config", None)
    unexplained: list[str] = []
    for construct in stack.node.find_all():
        if isinstance(construct, (iam.CfnPolicy, iam.CfnRole)):
            for finding, reason in iam5_findings(stack, construct):
                if reason:
                    _ack(construct, finding, reason)
                else:
                    unexplained.append(f"{construct.node.path}: {finding}")
        if isinstance(construct, iam.CfnRole):
            for arn in _as_list(stack.resolve(construct.managed_policy_arns) or []):
                name = render(arn).rsplit("/", 1)[-1]
                if name in MANAGED_POLICIES:
                    _ack(construct, f"AwsSolutions-IAM4[Policy::{render(arn)}]", MANAGED_POLICIES[name])
        if isinstance(construct, lambda_.CfnFunction) and (construct.runtime or "").startswith("python3.11"):
            _ack(
                construct,
                "AwsSolutions-L1",
                "Python 3.11 on purpose: the same interpreter as the processing image and the library's "
                "supported range; upgraded together.",
            )
        if isinstance(construct, lambda_.CfnFunction) and BUCKET_DEPLOYMENT.search(construct.node.path):
            _ack(
                construct,
                "AwsSolutions-L1",
                "aws-cdk-lib's BucketDeployment handler: its runtime is chosen and upgraded by the CDK library "
                "version this app pins.",
            )
        if isinstance(construct, secretsmanager.CfnSecret):
            _ack(
                construct,
                "AwsSolutions-SMG4",
                "OpenSearch master user: rotating it needs a domain config update, done by the operator "
                "(see infra/README.md); applications never use it (they sign with SigV4).",
            )
        if isinstance(construct, opensearch.CfnDomain):
            _ack(
                construct,
                "AwsSolutions-OS3",
                "The domain lives in private subnets and its security group admits only the docmill "
                "workloads; IP allow-listing does not apply to VPC domains.",
            )
            _ack(
                construct,
                "AwsSolutions-OS5",
                "Fine-grained access control authorises every request (SigV4 role mapping or the master "
                "user); the domain policy is the AWS-recommended open policy for FGAC inside a VPC.",
            )
            vs = config.vector_store if config else None
            if vs is None or vs.dedicated_master_nodes == 0:
                _ack(
                    construct,
                    "AwsSolutions-OS4",
                    "Dedicated master nodes are off in this stage to save cost; prod turns them on.",
                )
            if vs is None or vs.data_nodes < 2:
                _ack(
                    construct,
                    "AwsSolutions-OS7",
                    "Single data node in this stage to save cost; prod uses two AZs with zone awareness.",
                )
    chat_api = getattr(stack, "chat_api", None)
    if chat_api is not None:
        from aws_cdk import aws_apigatewayv2 as apigw
        from aws_cdk import aws_cognito as cognito

        for construct in chat_api.node.find_all():
            if isinstance(construct, apigw.CfnRoute) and construct.route_key.endswith("/api/v1/health"):
                _ack(construct, "AwsSolutions-APIG4",
                     "The health check is the one public route by design: it reveals nothing but 'ok' and "
                     "the version; every other route has the Cognito JWT authorizer.")
            if isinstance(construct, cognito.CfnUserPool):
                cfg = config.chat_api if config else None
                if cfg is None or not cfg.mfa_required:
                    _ack(construct, "AwsSolutions-COG2",
                         "MFA (TOTP) is offered to every user and required per stage with chat_api.mfa_required; "
                         "sign-up is administrator-only.")
                if cfg is None or not cfg.threat_protection:
                    _ack(construct, "AwsSolutions-COG8",
                         "The Plus feature plan (threat protection) is billed per active user: stages turn it "
                         "on with chat_api.threat_protection; sign-up is administrator-only.")
    # Container environment carries only non-secret settings (bucket names, endpoints, thresholds).
    ingestion = getattr(stack, "ingestion", None)
    if ingestion is not None:
        _ack(
            ingestion.task_definition,
            "AwsSolutions-ECS2",
            "Environment holds non-secret settings only (bucket names, endpoints, thresholds); credentials "
            "come from the task role and Secrets Manager.",
        )
    apply_checkov_skips(stack)
    return unexplained


# -- checkov -------------------------------------------------------------------------------------
# checkov (tests/infra/test_scanners.py) reads acknowledgements from each resource's
# ``Metadata.checkov.skip``. One entry per (check, resource type, logical id pattern); a finding
# no entry matches stays a failure. Entries in _CHECKOV_WHEN are written only where the finding's
# cause is present in that stack (e.g. no certificate configured).
_CDK_HANDLERS = r"^(Custom|AWS679f53fac|BucketNotificationsHandler|VectorStoreIndexProviderframework)"
CHECKOV_ACKS: list[tuple[str, str, str, str]] = [
    ("CKV_AWS_115", "AWS::Lambda::Function", r".",
     "No per-function reserved concurrency: it would take capacity from the account pool; how many run at once is "
     "bounded by the callers (SQS event source, Step Functions map concurrency, API Gateway throttling)."),
    ("CKV_AWS_116", "AWS::Lambda::Function", r".",
     "A Lambda DLQ applies to asynchronous invocations only; these functions are invoked synchronously (API, "
     "Step Functions tasks, CloudFormation custom resources) or by SQS, whose queue has its own redrive DLQ."),
    ("CKV_AWS_117", "AWS::Lambda::Function", _CDK_HANDLERS + r"|^(GenerationPlan|GenerationAssemble|FineTuningEvaluate)",
     "Calls AWS APIs only (S3, CloudFormation, SageMaker, EC2), over TLS with IAM; nothing in the VPC to reach, so "
     "attaching it would add NAT traffic and cold-start time without isolating anything."),
    ("CKV_AWS_173", "AWS::Lambda::Function", r".",
     "Environment variables hold resource names and ARNs only, never secrets (those are read from Secrets Manager "
     "at run time); Lambda encrypts them at rest with the AWS managed key."),
    ("CKV_AWS_370", "AWS::SageMaker::Model", r".",
     "A Hugging Face Hub model: the TGI container downloads its weights from huggingface.co at start, which "
     "network isolation forbids; S3 weights (llm.model_s3_uri) run isolated."),
    ("CKV_AWS_18", "AWS::S3::Bucket", r"AccessLogs|CdnLogs",
     "The access-log bucket itself: logging it into itself would loop, and into another bucket only moves the "
     "question; S3 server access logs cannot be delivered to a KMS-encrypted bucket either."),
    ("CKV_AWS_21", "AWS::S3::Bucket", r"AccessLogs|CdnLogs",
     "Log buckets receive each log object once and never overwrite it; versioning would only double storage."),
    ("CKV_AWS_21", "AWS::S3::Bucket", r"^WebSite",
     "The web app's static files are redeployed from the repository on every deploy (the source of truth); "
     "old versions have nothing to restore."),
    ("CKV_AWS_33", "AWS::KMS::Key", r"^StorageDataKey",
     "The OpenSearch Serverless statement (Serverless stages only): any principal of this account, and only "
     "through aoss in this region (kms:CallerAccount + kms:ViaService), the form of AWS managed keys' policies; "
     "the collection's access is decided by its data-access policy."),
    ("CKV_AWS_111", "AWS::IAM::Policy", r"^IngestionLargeFileWorkflowRole",
     "ecs:StopTask on '*' is aws-cdk-lib's EcsRunTask (runTask.sync) grant: Step Functions stops the task it "
     "started when the execution is stopped or times out, and task ARNs exist only at run time."),
    ("CKV_AWS_111", "AWS::IAM::Policy", r"^WebDeployCustomResourceHandler",
     "cloudfront:CreateInvalidation on '*' is aws-cdk-lib's BucketDeployment grant (the distribution id is only "
     "an input of its custom resource): it invalidates the web app's distribution after each deploy."),
    ("CKV_AWS_174", "AWS::CloudFront::Distribution", r".",
     "Stages without web.domain_names + certificate_arn serve on the default *.cloudfront.net certificate, "
     "whose minimum protocol cannot be raised; with a certificate the distribution uses TLSv1.2_2021."),
    ("CKV_AWS_68", "AWS::CloudFront::Distribution", r".",
     "No WAF in stages without web.web_acl_arn (a CLOUDFRONT-scope web ACL lives in us-east-1, outside this "
     "stack): static files plus an API that throttles and authenticates every call; set it to attach one."),
]


def _any_principal_via_service(stack: Stack, key: Any) -> bool:
    statements = (stack.resolve(key.key_policy) or {}).get("Statement", [])
    return any(
        st.get("Principal") in ({"AWS": "*"}, "*") and "kms:ViaService" in st.get("Condition", {}).get("StringEquals", {})
        for st in statements
    )


def _web(stack: Stack) -> Any:
    config = getattr(stack, "config", None)
    return config.web if config is not None else None


# Conditional acknowledgements: the skip is written only where the finding's cause is present
# (the stage's web settings decide the certificate and the web ACL).
_CHECKOV_WHEN: dict[str, Any] = {
    "CKV_AWS_33": _any_principal_via_service,
    "CKV_AWS_174": lambda stack, _d: _web(stack) is None or not _web(stack).certificate_arn,
    "CKV_AWS_68": lambda stack, _d: _web(stack) is None or not _web(stack).web_acl_arn,
}


def apply_checkov_skips(stack: Stack) -> None:
    """Write the matching CHECKOV_ACKS into each resource's ``Metadata.checkov.skip``."""
    from aws_cdk import CfnResource

    for construct in stack.node.find_all():
        if not isinstance(construct, CfnResource):
            continue
        logical_id = stack.resolve(construct.logical_id)
        skips = [
            {"id": check, "comment": reason}
            for check, type_, pattern, reason in CHECKOV_ACKS
            if construct.cfn_resource_type == type_ and re.search(pattern, logical_id)
            and _CHECKOV_WHEN.get(check, lambda *_: True)(stack, construct)
        ]
        if skips:
            construct.add_metadata("checkov", {"skip": skips})
