"""Fine-tuning: the models bucket, the SageMaker training role, and the workflow
generation -> training (``createTrainingJob.sync``) -> evaluation.

- Models bucket: adapters, model cards, metrics, job records (``jobs/``), the submitted code
  (``code/``) and the base model (``base/``). KMS (its own key), TLS only, no public access,
  versioned, access-logged.
- Training role (assumed by SageMaker only): read the datasets bucket, read ``base/`` and
  ``code/`` and write the job outputs in the models bucket, use the two keys, write its own logs
  and metrics, pull the training image. Nothing else.
- Workflow input::

    {"tenant": "...", "job_id": "ft-...", "generation": {<generation workflow input>},
     "training": {"job_name": "...", "dataset_uri": "s3://<datasets>/<name>", "code_uri": "s3://...",
                  "params": "<FinetuneParams JSON>", "out": "s3://<models>/<tenant>/<job_id>"}}

  ``docmill.finetune.sagemaker`` builds the same request for ``docmill finetune --on sagemaker``.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import paths
from infra.constructs.log_groups import LogGroups
from infra.constructs.runtime_code import RuntimeCode
from infra.constructs.storage import KMS_READ, KMS_WRITE, grant_objects
from infra.errors import task_retry_errors

# The Hugging Face PyTorch training image (same default as docmill.finetune.sagemaker).
TRAINING_IMAGE_REPOSITORY = "huggingface-pytorch-training"
TRAINING_IMAGE_ACCOUNT = "763104351884"
TRAINING_IMAGE_TAG = "2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04"
ENTRY_SCRIPT = "docmill_finetune_entry.py"


class FineTuning(Construct):
    """Attributes: ``models`` (bucket), ``key``, ``training_role``, ``evaluate`` (function),
    ``state_machine``, ``log_group``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: RuntimeCode,
        generation: sfn.IStateMachine,
        datasets: s3.IBucket,
        datasets_key: kms.IKey | None,
        access_logs: s3.IBucket,
        instance_type: str = "g5.xlarge",
        max_training_hours: int = 6,
        log_groups: LogGroups,
        removal: RemovalPolicy,
        tracing: bool,
        common_env: dict[str, str],
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self, "ModelsKey", enable_key_rotation=True, removal_policy=removal,
            description="docmill fine-tuned models, job records and training volumes",
        )
        self.models = s3.Bucket(
            self,
            "Models",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-multipart", abort_incomplete_multipart_upload_after=Duration.days(7)),
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(30)),
                s3.LifecycleRule(id="expire-code", prefix="code/", expiration=Duration.days(30)),
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="models/",
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
        )

        # -- the role SageMaker runs the training job with ---------------------------------------
        self.training_role = iam.Role(
            self,
            "TrainingRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="docmill fine-tune training jobs: datasets in, adapters and metrics out",
        )
        grant_objects(self.training_role, datasets, datasets_key, read=True)
        grant_objects(self.training_role, self.models, self.key, read=True, write=True)
        # CreateGrant: SageMaker attaches the key to the training volume it creates.
        self.training_role.add_to_principal_policy(
            iam.PolicyStatement(actions=[*KMS_WRITE, "kms:CreateGrant"], resources=[self.key.key_arn])
        )
        if datasets_key is not None:
            self.training_role.add_to_principal_policy(
                iam.PolicyStatement(actions=KMS_READ, resources=[datasets_key.key_arn])
            )
        self.training_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[stack.format_arn(service="logs", resource="log-group",
                                            resource_name="/aws/sagemaker/TrainingJobs:*",
                                            arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            )
        )
        self.training_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
            )
        )
        self.training_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        image_repo_arn = (
            f"arn:{stack.partition}:ecr:{stack.region}:{TRAINING_IMAGE_ACCOUNT}:repository/{TRAINING_IMAGE_REPOSITORY}"
        )
        self.training_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[image_repo_arn],
            )
        )

        # -- evaluation: record base vs tuned metrics in the job record ---------------------------
        self.log_group = log_groups.create(self, "WorkflowLogs", removal=removal)
        self.evaluate = lambda_.Function(
            self,
            "Evaluate",
            description="docmill fine-tune: record the test-split evaluation of a finished training job",
            runtime=lambda_.Runtime.PYTHON_3_11,
            code=lambda_.Code.from_asset(str(paths.FINETUNE_CODE)),
            handler=paths.FINETUNE_EVALUATE_HANDLER,
            layers=[code.layer],
            memory_size=512,
            timeout=Duration.minutes(1),
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            log_group=log_groups.create(self, "EvaluateLogs", removal=removal),
            environment={
                **common_env,
                "POWERTOOLS_SERVICE_NAME": "finetune_evaluate",
                "DOCMILL_AWS__MODELS_BUCKET": self.models.bucket_name,
            },
        )
        grant_objects(self.evaluate, self.models, self.key, read=True, write=True)

        # -- the workflow -------------------------------------------------------------------------
        generate = tasks.StepFunctionsStartExecution(
            self,
            "GenerateDataset",
            state_machine=generation,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            input=sfn.TaskInput.from_json_path_at("$.generation"),
            result_path="$.generated",
        )
        # createTrainingJob.sync as a plain ASL state: CDK's SageMakerCreateTrainingJob grants
        # s3:GetObject/PutObject on "*" for run-time locations; here every permission is explicit.
        image = (
            f"{TRAINING_IMAGE_ACCOUNT}.dkr.ecr.{stack.region}.{stack.url_suffix}/"
            f"{TRAINING_IMAGE_REPOSITORY}:{TRAINING_IMAGE_TAG}"
        )

        def s3_prefix(path: str) -> dict:
            return {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": path, "S3DataDistributionType": "FullyReplicated"}}

        train = sfn.CustomState(
            self,
            "TrainAdapter",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{stack.partition}:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {
                    "TrainingJobName.$": "$.training.job_name",
                    "RoleArn": self.training_role.role_arn,
                    "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
                    "InputDataConfig": [
                        {"ChannelName": "train", "DataSource": s3_prefix("$.training.dataset_uri")},
                        {"ChannelName": "base", "DataSource": s3_prefix("$.settings.base_uri")},
                    ],
                    "OutputDataConfig": {"S3OutputPath.$": "$.settings.output_uri", "KmsKeyId": self.key.key_arn},
                    "ResourceConfig": {
                        "InstanceType": f"ml.{instance_type}",
                        "InstanceCount": 1,
                        "VolumeSizeInGB": 30,
                        "VolumeKmsKeyId": self.key.key_arn,
                    },
                    "StoppingCondition": {"MaxRuntimeInSeconds": max_training_hours * 3600},
                    "HyperParameters": {
                        "sagemaker_program": f'"{ENTRY_SCRIPT}"',
                        "sagemaker_submit_directory.$": "$.training.code_uri",
                        "params.$": "$.training.params",
                        "out.$": "$.training.out",
                        "job_id.$": "$.job_id",
                    },
                    "Tags": [{"Key": "docmill:component", "Value": "finetune"}],
                },
                "ResultSelector": {"TrainingJobStatus.$": "$.TrainingJobStatus", "BillableTimeInSeconds.$": "$.BillableTimeInSeconds"},
                "ResultPath": "$.trained",
            },
        )
        evaluate = tasks.LambdaInvoke(
            self,
            "RecordEvaluation",
            lambda_function=self.evaluate,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            payload=sfn.TaskInput.from_object(
                {
                    "tenant.$": "$.tenant",
                    "job_id.$": "$.job_id",
                    "out.$": "$.training.out",
                    "training_job_name.$": "$.training.job_name",
                    "dataset_uri.$": "$.training.dataset_uri",
                }
            ),
            result_path="$.evaluation",
        )
        evaluate.add_retry(errors=task_retry_errors(), interval=Duration.seconds(2), backoff_rate=2.0, max_attempts=3)
        settings = sfn.Pass(
            self,
            "Settings",
            result=sfn.Result.from_object(
                {
                    "base_uri": self.models.s3_url_for_object("base/"),
                    "output_uri": self.models.s3_url_for_object("sagemaker/"),
                }
            ),
            result_path="$.settings",
        )
        definition = settings.next(generate).next(train).next(evaluate).next(sfn.Succeed(self, "Done"))
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(max_training_hours + 25),
            tracing_enabled=tracing,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        # What createTrainingJob.sync needs: training jobs named docmill-*, passing the training
        # role to SageMaker (only), and the managed EventBridge rule the .sync pattern uses.
        job_arn = stack.format_arn(service="sagemaker", resource="training-job", resource_name="docmill-*")
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                         "sagemaker:AddTags"],
                resources=[job_arn],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[stack.format_arn(service="events", resource="rule",
                                            resource_name="StepFunctionsGetEventsForSageMakerTrainingJobsRule")],
            )
        )

