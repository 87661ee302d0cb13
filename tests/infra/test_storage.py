"""Storage construct: buckets secure by default, object events wired to SQS with a DLQ."""

from __future__ import annotations

from tests.infra.conftest import Synth, as_list


def _buckets(synth: Synth) -> dict[str, dict]:
    return synth.resources("AWS::S3::Bucket")


def _by_prefix(synth: Synth, prefix: str) -> tuple[str, dict]:
    matches = [(lid, r) for lid, r in _buckets(synth).items() if lid.startswith(prefix)]
    assert len(matches) == 1, f"expected one bucket {prefix}*, got {[m[0] for m in matches]}"
    return matches[0]


def test_every_bucket_blocks_public_access(synth: Synth) -> None:
    buckets = _buckets(synth)
    assert {lid.rstrip("0123456789ABCDEF") for lid in buckets} == {
        "StorageAccessLogs",
        "StorageRaw",
        "StorageProcessed",
        "StorageDatasets",
        "WebSite",  # the web app's build (tests/infra/test_web.py)
        "WebCdnLogs",
        "FineTuningModels",  # fine-tuned adapters (infra/constructs/finetuning.py)
    }
    for lid, bucket in buckets.items():
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, lid


def test_data_buckets_use_the_kms_key_and_log_to_the_access_log_bucket(synth: Synth) -> None:
    logs_lid, logs_bucket = _by_prefix(synth, "StorageAccessLogs")
    assert (
        logs_bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "AES256"
    )  # log delivery needs SSE-S3
    for name in ("StorageRaw", "StorageProcessed", "StorageDatasets"):
        _, bucket = _by_prefix(synth, name)
        sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0].startswith(
            "StorageDataKey"
        )
        assert sse["BucketKeyEnabled"] is True
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_lid}
    keys = synth.resources("AWS::KMS::Key")
    data_key = next(k for lid, k in keys.items() if lid.startswith("StorageDataKey"))
    assert data_key["Properties"]["EnableKeyRotation"] is True


def test_every_bucket_policy_denies_non_tls_requests(synth: Synth) -> None:
    policies = synth.resources("AWS::S3::BucketPolicy")
    covered = set()
    for policy in policies.values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            if st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                covered.add(policy["Properties"]["Bucket"]["Ref"])
    assert covered == set(_buckets(synth))


def test_raw_is_versioned_with_noncurrent_expiry_and_multipart_cleanup(synth: Synth) -> None:
    _, raw = _by_prefix(synth, "StorageRaw")
    assert raw["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in raw["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-noncurrent"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rules["abort-multipart"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert rules["infrequent-access"]["Transitions"][0]["StorageClass"] == "STANDARD_IA"
    _, datasets = _by_prefix(synth, "StorageDatasets")
    work = {r["Id"]: r for r in datasets["Properties"]["LifecycleConfiguration"]["Rules"]}["expire-work"]
    assert work["Prefix"] == "_work/" and work["ExpirationInDays"] == 30


def test_object_created_and_removed_events_go_to_the_queue(synth: Synth) -> None:
    raw_lid, _ = _by_prefix(synth, "StorageRaw")
    (notif,) = synth.resources("Custom::S3BucketNotifications").values()
    assert notif["Properties"]["BucketName"] == {"Ref": raw_lid}
    configs = notif["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(c["Events"][0] for c in configs) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    queue_lids = {c["QueueArn"]["Fn::GetAtt"][0] for c in configs}
    assert len(queue_lids) == 1 and next(iter(queue_lids)).startswith("StorageEvents")
    # S3 may only send from the raw bucket.
    queue_policies = [
        p
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": next(iter(queue_lids))} in p["Properties"]["Queues"]
    ]
    allow_s3 = [
        st
        for p in queue_policies
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if st.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    assert allow_s3 and allow_s3[0]["Condition"]["ArnLike"]["aws:SourceArn"] == {
        "Fn::GetAtt": [raw_lid, "Arn"]
    }


def test_queue_redrives_to_the_dlq_and_both_are_encrypted(synth: Synth) -> None:
    queues = synth.resources("AWS::SQS::Queue")
    events = next(q for lid, q in queues.items() if lid.startswith("StorageEvents") and "Dlq" not in lid)
    dlq_lid = next(lid for lid in queues if lid.startswith("StorageEventsDlq"))
    redrive = events["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_lid, "Arn"]}, "maxReceiveCount": 3}
    assert events["Properties"]["VisibilityTimeout"] >= 6 * 60  # >= 6 x route timeout
    # Every queue (events, its DLQ, the connectors' schedule DLQ) uses the queue key, not the data key.
    (key_lid,) = [lid for lid in synth.resources("AWS::KMS::Key") if lid.startswith("StorageQueueKey")]
    for lid, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_lid, "Arn"]}, lid


QUEUE_KEY_USERS = {"AWS::SQS::Queue", "AWS::IAM::Policy"}


def lid_of(resource: dict, synth: Synth) -> str:
    return next(lid for lid, r in synth.template["Resources"].items() if r is resource)


def key_ref(lid: str) -> str:
    return f"'Fn::GetAtt': ['{lid}', 'Arn']"


def test_the_queue_key_admits_s3_only_to_encrypt_and_decrypt_event_notifications(synth: Synth) -> None:
    # Given the queue key's policy
    (key,) = [k for lid, k in synth.resources("AWS::KMS::Key").items() if lid.startswith("StorageQueueKey")]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    # When the statements naming a service are read
    services = [st for st in statements if "Service" in st["Principal"]]
    # Then S3 is the one service, with the calls CDK's SqsDestination grants a sender (the AWS-documented
    # Decrypt/GenerateDataKey, and its send grant, conditioned on the raw bucket); the key encrypts
    # nothing but the queues, so this reaches bucket and object names only
    assert {st["Principal"]["Service"] for st in services} == {"s3.amazonaws.com"}
    allowed = {"kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt", "kms:ReEncrypt*"}
    assert all(set(as_list(st["Action"])) <= allowed for st in services)
    users = {lid for lid, r in synth.template["Resources"].items() if key_ref(lid_of(key, synth)) in str(r)}
    assert users and all(synth.template["Resources"][u]["Type"] in QUEUE_KEY_USERS for u in users)


def test_dev_stage_auto_deletes_buckets_and_prod_retains_them(synth: Synth) -> None:
    # dev (cdk.json) sets retain_buckets false: buckets go with the stack, emptied first.
    for lid, bucket in _buckets(synth).items():
        assert bucket.get("DeletionPolicy") == "Delete", lid
    assert synth.resources("Custom::S3AutoDeleteObjects")
