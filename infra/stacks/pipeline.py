"""The docmill stack: composes the capability constructs and wires the grants between them."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra import paths
from infra.config import StageConfig
from infra.constructs.chat_api import ChatApi
from infra.constructs.connectors import SourceConnectors, sources_from_context
from infra.constructs.finetuning import FineTuning
from infra.constructs.generation import GenerationWorkflow
from infra.constructs.ingestion import Ingestion
from infra.constructs.llm_endpoint import LlmEndpoint
from infra.constructs.log_groups import LogGroups
from infra.constructs.monitoring import Monitoring
from infra.constructs.network import Network
from infra.constructs.runtime_code import RuntimeCode
from infra.constructs.storage import WORK_PREFIX, Storage
from infra.constructs.vector_search import VectorSearchDomain
from infra.constructs.web import WebApp


class DocmillStack(Stack):
    """Attributes: one per capability: ``network``, ``code``, ``storage``, ``vector_store``, ``llm``,
    ``ingestion``, ``generation``, ``finetuning``, ``monitoring`` (None when disabled)."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, description=f"docmill document pipeline ({config.stage})", **kwargs)
        # Behaviour the constructs rely on, whether or not the caller passed cdk.json's context
        # (`python app.py`, an IDE, a test): the template must not hang on a flag default.
        for flag in (
            "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2",
            "@aws-cdk/aws-stepfunctions-tasks:ecsReduceRunTaskPermissions",
            # Access-log buckets grant the log service by bucket policy: with BucketOwnerEnforced
            # ownership the ACL alternative (LogDeliveryWrite) is refused.
            "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy",
        ):
            self.node.set_context(flag, True)
        self.config = config
        removal = RemovalPolicy.RETAIN if config.storage.retain_buckets else RemovalPolicy.DESTROY
        # Storage first: its data key encrypts the log groups of every construct after it.
        self.storage = Storage(self, "Storage", config=config.storage)
        self.log_groups = LogGroups(
            self, key=self.storage.key, retention_days=config.log_retention_days, removal=RemovalPolicy.DESTROY
        )
        self.network = Network(self, "Network", config=config.network, log_groups=self.log_groups)
        self.code = RuntimeCode(self, "Code")
        self.vector_store = VectorSearchDomain(
            self,
            "VectorStore",  # the construct id keeps the deployed logical ids stable
            config=config.vector_store,
            network=self.network,
            key=self.storage.key,
            log_groups=self.log_groups,
            removal=removal,
            layer=self.code.layer,
        )
        self.llm = LlmEndpoint(self, "Llm", config=config.llm)

        storage = self.storage
        common_env = {
            "POWERTOOLS_METRICS_NAMESPACE": paths.METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "DOCMILL_HOME": "/tmp/docmill",  # noqa: S108 - the only writable path in Lambda
            "DOCMILL_AWS__RAW_BUCKET": storage.raw.bucket_name,
            "DOCMILL_AWS__PROCESSED_BUCKET": storage.processed.bucket_name,
            "DOCMILL_AWS__DATASETS_BUCKET": storage.datasets.bucket_name,
            "DOCMILL_AWS__WORK_PREFIX": WORK_PREFIX,
            **self.vector_store.environment(),
            **self.llm.environment(),
        }
        self.ingestion = Ingestion(
            self,
            "Ingestion",
            config=config.ingestion,
            code=self.code,
            network=self.network,
            queue=storage.queue,
            dlq=storage.dlq,
            log_groups=self.log_groups,
            tracing=config.tracing,
            common_env=common_env,
        )
        self.generation = GenerationWorkflow(
            self,
            "Generation",
            config=config.generation,
            code=self.code,
            network=self.network,
            datasets=storage.datasets,
            log_groups=self.log_groups,
            tracing=config.tracing,
            common_env=common_env,
        )

        # Fine-tuning: models bucket, training role, generation -> training -> evaluation.
        self.finetuning = FineTuning(
            self,
            "FineTuning",
            code=self.code,
            generation=self.generation.state_machine,
            datasets=storage.datasets,
            datasets_key=storage.key,
            access_logs=storage.access_logs,
            log_groups=self.log_groups,
            removal=removal,
            tracing=config.tracing,
            common_env=common_env,
        )

        # -- cross-capability grants (least privilege, scoped to the resources) ------------------
        ing, gen, vs = self.ingestion, self.generation, self.vector_store
        # route: size/type from the object, and on ObjectRemoved the source's outputs and chunks go.
        storage.grant_read(ing.route, storage.raw)
        # ... reads source.json state and writes failure records for refused files.
        storage.grant_read_write(ing.route, storage.processed)
        storage.grant_delete(ing.route, storage.processed)
        vs.grant_read_write(ing.route)
        # process (Lambda and ECS task): read the document, write elements/chunks, index them.
        for worker in ing.workers:
            storage.grant_read(worker, storage.raw)
            storage.grant_read_write(worker, storage.processed)
            storage.grant_delete(worker, storage.processed)  # a new version replaces the old outputs
            vs.grant_read_write(worker)
        # generation: chunks from processed, manifests/shards under _work/, datasets at the top.
        storage.grant_read(gen.plan, storage.processed)
        storage.grant_read_write(gen.plan, storage.datasets, WORK_PREFIX)
        storage.grant_read(gen.generate_batch, storage.processed)
        storage.grant_read_write(gen.generate_batch, storage.datasets, WORK_PREFIX)
        vs.grant_read_write(gen.generate_batch)
        self.llm.grant_invoke(gen.generate_batch)
        storage.grant_read(gen.assemble, storage.processed)
        storage.grant_read_write(gen.assemble, storage.datasets)
        # The Distributed Map reads the manifest and writes its results in the encrypted bucket.
        storage.grant_key(gen.state_machine)
        # Scheduled source syncs (cdk context "docmill:connectors"): they run the processing image
        # as an ECS task and land documents in the raw bucket, whose events do the rest. The sync
        # config (connectors/sync.yaml) lives in the processed bucket next to the outputs.
        self.connectors = None
        sources = sources_from_context(self)
        if sources:
            self.connectors = SourceConnectors(
                self,
                "Connectors",
                cluster=ing.cluster,
                task_definition=ing.task_definition,
                config_bucket=storage.processed,
                sources=sources,
                vpc_subnets=self.network.private_subnets,
                security_groups=[self.network.workload_sg],
                queue_key=storage.queue_key,
            )
            storage.grant_read_write(self.connectors.task_role, storage.raw)
            storage.grant_delete(self.connectors.task_role, storage.raw)  # deleted at the source
        # Chat API (issue #13): the docmill.api app in Lambda behind an HTTP API + Cognito.
        self.chat_api = None
        if config.chat_api.enabled:
            chat = self.chat_api = ChatApi(
                self,
                "ChatApi",
                config=config.chat_api,
                code=self.code,
                network=self.network,
                key=storage.key,
                log_groups=self.log_groups,
                removal=removal,
                tracing=config.tracing,
                common_env=common_env,
                generation=gen.state_machine,
            )
            # Uploads land in the raw bucket under <tenant>/<collection>/<doc id>/ (a presigned POST
            # is signed with the function's role); a delete removes the object, and its
            # ObjectRemoved event removes the chunks.
            storage.grant_read_write(chat.function, storage.raw)
            storage.grant_delete(chat.function, storage.raw)
            vs.grant_read_write(chat.function)  # k-NN search of the tenant's chunks
            self.llm.grant_invoke(chat.function)
            storage.grant_key(chat.function)
            # The pipeline keeps the status of documents uploaded through the API current.
            # (route marks refused uploads failed; process and the ECS task the rest.)
            for writer in [ing.route, *ing.workers]:
                chat.grant_status_writes(writer)
            ing.route.add_environment("DOCMILL_API__STATE_TABLE", chat.table.table_name)
            ing.process.add_environment("DOCMILL_API__STATE_TABLE", chat.table.table_name)
            ing.container.add_environment("DOCMILL_API__STATE_TABLE", chat.table.table_name)
        vs.finalize()

        self.monitoring = None
        if config.monitoring.enabled:
            self.monitoring = Monitoring(
                self,
                "Monitoring",
                config=config.monitoring,
                queue=storage.queue,
                dlq=storage.dlq,
                route=ing.route,
                process=ing.process,
                generation=gen.state_machine,
                large_files=ing.state_machine,
                endpoint_name=self.llm.endpoint_name,
                variant_name=self.llm.variant_name,
            )

        # The notice board web app (frontend/): S3 + CloudFront; /api/* goes to the chat API on
        # the same origin, and people sign in through the user pool's hosted UI.
        self.web = None
        if config.web.enabled:
            api_endpoint = cognito_domain = client_id = None
            if self.chat_api is not None:
                # Domain prefixes are global per region: the stack's own UUID keeps this one unique.
                prefix = config.web.cognito_domain_prefix or Fn.join(
                    "-", [config.project, config.stage,
                          Fn.select(4, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))]
                )
                hosted_ui = self.chat_api.user_pool.add_domain(
                    "HostedUi", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix)
                )
                api_endpoint = self.chat_api.http_api.api_endpoint
                cognito_domain = Fn.select(2, Fn.split("/", hosted_ui.base_url()))
                client_id = self.chat_api.user_pool_client.user_pool_client_id
            self.web = WebApp(
                self,
                "Web",
                config=config.web,
                build_dir=paths.WEB_BUILD_DIR,
                access_logs=storage.access_logs,
                api_endpoint=api_endpoint,
                cognito_domain=cognito_domain,
                cognito_client_id=client_id,
                removal=removal,
            )
            if self.chat_api is not None:
                # The hosted UI sends people back to the web app after sign-in.
                client = self.chat_api.user_pool_client.node.default_child
                client.callback_ur_ls = [*config.chat_api.callback_urls, f"{self.web.url}/"]

        outputs = {
            "RawBucket": storage.raw.bucket_name,
            "ProcessedBucket": storage.processed.bucket_name,
            "DatasetsBucket": storage.datasets.bucket_name,
            "EventsQueueUrl": storage.queue.queue_url,
            "EventsDlqUrl": storage.dlq.queue_url,
            "GenerationStateMachineArn": gen.state_machine.state_machine_arn,
            "VectorStoreEndpoint": vs.endpoint,
            "VectorIndex": vs.index_name,
            "LlmEndpointName": self.llm.endpoint_name,
            "ModelsBucket": self.finetuning.models.bucket_name,
            "TrainingRoleArn": self.finetuning.training_role.role_arn,
            "FineTuneStateMachineArn": self.finetuning.state_machine.state_machine_arn,
        }
        if config.llm.mode == "create":
            count = config.llm.instance_count
            outputs["LlmEndpointCostPerHourUsd"] = (
                f"{count * config.llm.price_per_hour_usd:.3f} ({count} x {config.llm.instance_type} "
                "on-demand, billed while the endpoint exists)"
            )
        if self.chat_api is not None:
            outputs["ChatApiUrl"] = self.chat_api.url
            outputs["ChatUserPoolId"] = self.chat_api.user_pool.user_pool_id
            outputs["ChatUserPoolClientId"] = self.chat_api.user_pool_client.user_pool_client_id
            outputs["ChatStateTable"] = self.chat_api.table.table_name
        if ing.state_machine is not None:
            outputs["LargeFileStateMachineArn"] = ing.state_machine.state_machine_arn
        if vs.master_secret is not None:
            outputs["VectorStoreMasterSecretArn"] = vs.master_secret.secret_arn
        if self.web is not None:
            outputs["WebAppUrl"] = self.web.url
            outputs["WebBucket"] = self.web.bucket.bucket_name
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
