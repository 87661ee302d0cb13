"""Storage: raw / processed / datasets buckets, their access-log bucket, and the object-event queue.

Object events go S3 -> SQS directly (not EventBridge) because:
- the route Lambda consumes an SQS event source in batches with partial-batch failure reporting,
  and SQS redrive (maxReceiveCount -> DLQ) gives "keeps failing -> DLQ" with no extra code;
- the queue is the back-pressure buffer: Lambda scales its pollers to the queue, so a bulk upload
  of thousands of files cannot overrun the container Lambda or the vector store;
- EventBridge would need an SQS target in front of the Lambda for the same guarantees, i.e. one
  more hop and one more bill for no gain here (no fan-out to other consumers is needed).
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StorageConfig

# Workflow scratch (batch manifests, Distributed Map results) under this prefix in the datasets bucket.
WORK_PREFIX = "_work/"


class Storage(Construct):
    """Attributes: ``raw``, ``processed``, ``datasets``, ``access_logs`` (buckets), ``key`` (KMS key or
    None for SSE-S3), ``queue`` (object events), ``dlq`` and ``queue_key`` (their KMS key, or None
    for SQS-managed encryption where the stage encrypts with SSE-S3)."""

    def __init__(self, scope: Construct, id: str, *, config: StorageConfig) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if config.retain_buckets else RemovalPolicy.DESTROY
        auto_delete = not config.retain_buckets

        self.key: kms.Key | None = None
        if config.encryption == "kms":
            self.key = kms.Key(
                self,
                "DataKey",
                enable_key_rotation=True,
                removal_policy=removal,
                description="docmill data buckets (raw documents, processed chunks, datasets)",
            )

        # Server access logs: SSE-S3 is the only encryption the log delivery service supports.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=Duration.days(config.access_log_retention_days))
            ],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )

        self.raw = self._bucket(
            "Raw",
            config,
            removal,
            auto_delete,
            versioned=True,
            lifecycle=[
                # Overwritten/deleted document versions are kept for rollback, then expire.
                s3.LifecycleRule(
                    id="expire-noncurrent",
                    noncurrent_version_expiration=Duration.days(config.raw_noncurrent_version_days),
                ),
                s3.LifecycleRule(
                    id="infrequent-access",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(config.raw_infrequent_access_days),
                        )
                    ],
                ),
            ],
        )
        # Versioned so a bad re-ingest or a deletion can be undone; old versions of outputs that
        # every re-ingest rewrites expire after a week instead of piling up.
        processed_rules = [
            s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(7))
        ]
        if config.processed_expiration_days:
            processed_rules.append(
                s3.LifecycleRule(id="expire", expiration=Duration.days(config.processed_expiration_days))
            )
        self.processed = self._bucket(
            "Processed", config, removal, auto_delete, versioned=True, lifecycle=processed_rules
        )
        self.datasets = self._bucket(
            "Datasets",
            config,
            removal,
            auto_delete,
            versioned=True,
            lifecycle=[
                s3.LifecycleRule(id="expire-work", prefix=WORK_PREFIX, expiration=Duration.days(30)),
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(90)),
            ],
        )

        # The queues get a key of their own, not the data key: S3 must be admitted to the key
        # that encrypts its event notifications (s3n.SqsDestination adds the AWS-documented
        # statement for s3.amazonaws.com), and that grant should reach bucket and object names,
        # nothing of the documents themselves.
        self.queue_key: kms.Key | None = None
        queue_encryption = sqs.QueueEncryption.SQS_MANAGED
        if config.encryption == "kms":
            self.queue_key = kms.Key(
                self,
                "QueueKey",
                enable_key_rotation=True,
                removal_policy=removal,
                description="docmill queues (object events and dead letters: bucket and key names only)",
            )
            queue_encryption = sqs.QueueEncryption.KMS
        self.dlq = sqs.Queue(
            self,
            "EventsDlq",
            retention_period=Duration.days(config.dlq_retention_days),
            encryption=queue_encryption,
            encryption_master_key=self.queue_key,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Events",
            # >= the route Lambda timeout x 6 is AWS's advice; the config default (900 s) covers route's 60 s.
            visibility_timeout=Duration.seconds(config.queue_visibility_timeout_seconds),
            retention_period=Duration.days(4),
            encryption=queue_encryption,
            encryption_master_key=self.queue_key,
            # Messages are encrypted with data keys reused for 5 minutes (the default): fewer KMS calls.
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=config.max_receive_count),
        )
        target = s3n.SqsDestination(self.queue)
        self.raw.add_event_notification(s3.EventType.OBJECT_CREATED, target)
        self.raw.add_event_notification(s3.EventType.OBJECT_REMOVED, target)

    def grant_read(self, grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str = "") -> None:
        grant_objects(grantee, bucket, self.key, read=True, prefix=prefix)

    def grant_read_write(self, grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str = "") -> None:
        grant_objects(grantee, bucket, self.key, read=True, write=True, prefix=prefix)

    def grant_delete(self, grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str = "") -> None:
        grant_objects(grantee, bucket, self.key, read=True, delete=True, prefix=prefix)

    def grant_key(self, grantee: iam.IGrantable) -> None:
        """Encrypt/decrypt with the data key (e.g. a state machine reading/writing S3 through ItemReader)."""
        if self.key is not None:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(actions=KMS_WRITE, resources=[self.key.key_arn])
            )

    def _bucket(
        self,
        id: str,
        config: StorageConfig,
        removal: RemovalPolicy,
        auto_delete: bool,
        *,
        versioned: bool,
        lifecycle: list[s3.LifecycleRule],
    ) -> s3.Bucket:
        rules = [
            s3.LifecycleRule(id="abort-multipart", abort_incomplete_multipart_upload_after=Duration.days(7)),
            *lifecycle,
        ]
        return s3.Bucket(
            self,
            id,
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            bucket_key_enabled=self.key is not None,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            lifecycle_rules=rules,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{id.lower()}/",
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )


# -- grants ---------------------------------------------------------------------------------------
# Explicit actions (no `s3:GetObject*`-style wildcards, which CDK's bucket.grant_* helpers use):
# each grant names exactly the API calls docmill makes, on one bucket (and prefix) and its key.
READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes", "s3:GetObjectTagging"]
LIST_ACTIONS = ["s3:ListBucket", "s3:ListBucketVersions"]
WRITE_ACTIONS = [
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
DELETE_ACTIONS = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
KMS_READ = ["kms:Decrypt", "kms:DescribeKey"]
KMS_WRITE = ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"]


def grant_objects(
    grantee: iam.IGrantable,
    bucket: s3.IBucket,
    key: kms.IKey | None,
    *,
    read: bool = False,
    write: bool = False,
    delete: bool = False,
    prefix: str = "",
) -> None:
    """Least-privilege object access to ``bucket`` (optionally under ``prefix``), plus its KMS key."""
    actions: list[str] = []
    if read:
        actions += READ_ACTIONS
    if write:
        actions += WRITE_ACTIONS
    if delete:
        actions += DELETE_ACTIONS
    principal = grantee.grant_principal
    principal.add_to_principal_policy(
        iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(f"{prefix}*")])
    )
    listing = iam.PolicyStatement(actions=LIST_ACTIONS, resources=[bucket.bucket_arn])
    if prefix:
        listing.add_condition("StringLike", {"s3:prefix": [f"{prefix}*"]})
    principal.add_to_principal_policy(listing)
    if key is not None:
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=KMS_WRITE if (write or delete) else KMS_READ,
                resources=[key.key_arn],
            )
        )


# -- queues ---------------------------------------------------------------------------------------
# CDK's queue.grant_send_messages adds kms:ReEncrypt* and kms:GenerateDataKey* for a KMS-encrypted
# queue. Producers that CDK wires itself (a Lambda on-failure destination, a Scheduler DLQ) are
# given ``producer_view(queue)`` instead, a reference without the key, so CDK grants the SQS
# action alone, and ``grant_produce`` adds the two KMS calls a producer makes on the queue's key.
QUEUE_PRODUCER_KMS = ["kms:GenerateDataKey", "kms:Decrypt"]


def producer_view(queue: sqs.IQueue) -> sqs.IQueue:
    """The same queue as an ARN reference (no key), for CDK integrations that send to it."""
    existing = queue.node.try_find_child("ProducerView")
    if existing is not None:
        return cast(sqs.IQueue, existing)
    return sqs.Queue.from_queue_arn(queue, "ProducerView", queue.queue_arn)


def grant_produce(queue: sqs.IQueue, grantee: iam.IGrantable) -> None:
    """The KMS calls a producer of an SSE-KMS queue makes, on that queue's key only."""
    if queue.encryption_master_key is not None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=QUEUE_PRODUCER_KMS, resources=[queue.encryption_master_key.key_arn])
        )
