"""``docmill dev``: a local AWS for the event-driven pipeline, without Docker.

What it sets up, in an S3/SQS/Step Functions/Lambda endpoint (moto's server, started in this
process on 127.0.0.1; or an endpoint the caller names, e.g. LocalStack):

- buckets ``<prefix>-raw`` (versioned), ``<prefix>-processed``, ``<prefix>-datasets``;
- queue ``<prefix>-events`` with dead-letter queue ``<prefix>-events-dlq`` (redrive after
  ``max_receive_count`` receives) and the raw bucket's ObjectCreated/ObjectRemoved
  notification to the queue (what infra/constructs/storage.py deploys);
- Lambda functions ``docmill-process`` and the generation tasks ``docmill-plan``,
  ``docmill-generate-batch``, ``docmill-assemble``, bound to the handlers in functions/ in this
  process (see ``docmill_devtools.local_lambda`` for why and how);
- the generation state machine: the stack's definition, packaged as ``generation.asl.json``
  (exported from the synthesised stack by ``infra.asl_export``);
- with an external endpoint (``--endpoint-url`` / ``AWS_ENDPOINT_URL``, e.g. LocalStack) only the
  buckets, queue and notification are created there; documents are processed in this process and
  no state machine is created (the emulator would run Lambda tasks in Docker);
- a poller that feeds the queue to the ``route`` handler in SQS Lambda-event shape, deleting
  what succeeded and letting failed records come back (and, eventually, go to the DLQ).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import boto3
from botocore.config import Config

from docmill import aws
from docmill.config import Settings
from docmill.errors import ConfigurationError
from docmill.runtime import context as runtime_context
from docmill_devtools.local_lambda import LocalContext, LocalFunctions

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
SERVICES = ("s3", "sqs", "lambda", "stepfunctions", "iam", "ecs", "sts")
PROCESS_FUNCTION = "docmill-process"
ECS_CLUSTER = "docmill-dev"
ECS_TASK_FAMILY = "docmill-dev-process"
ECS_CONTAINER = "process"
STATE_MACHINE_NAME = "docmill-generation"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class DevNames:
    prefix: str = "docmill-dev"

    @property
    def raw(self) -> str:
        return f"{self.prefix}-raw"

    @property
    def processed(self) -> str:
        return f"{self.prefix}-processed"

    @property
    def datasets(self) -> str:
        return f"{self.prefix}-datasets"

    @property
    def queue(self) -> str:
        return f"{self.prefix}-events"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}-events-dlq"


def make_clients(endpoint_url: str | None, region: str = REGION) -> dict[str, Any]:
    """boto3 clients for the emulator (``endpoint_url`` None: moto's in-process mock)."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region  # noqa: S106 - the emulator accepts any
    )
    cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=900, s3={"addressing_style": "path"})
    return {s: session.client(s, endpoint_url=endpoint_url, config=cfg) for s in SERVICES}


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """SQS messages in the shape the Lambda SQS event source delivers them."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


@dataclass
class Provisioned:
    names: DevNames
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    state_machine_arn: str | None = None
    function_arns: dict[str, str] = field(default_factory=dict)


def provision(
    clients: dict[str, Any],
    names: DevNames,
    *,
    max_receive_count: int = 3,
    visibility_timeout: int = 900,  # the stack's default; failed records come back sooner (poller)
) -> Provisioned:
    """Buckets, queue + DLQ, and the raw bucket's notification (idempotent)."""
    s3, sqs = clients["s3"], clients["sqs"]
    for bucket in (names.raw, names.processed, names.datasets):
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=names.raw, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=names.datasets, VersioningConfiguration={"Status": "Enabled"})
    dlq_url = sqs.create_queue(QueueName=names.dlq)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=names.raw,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )
    return Provisioned(names=names, queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url, dlq_arn=dlq_arn)


GENERATION_ROLES = ("plan", "generate_batch", "assemble")


def generation_function_names(prefix: str = "docmill") -> dict[str, str]:
    """The Lambda names the generation tasks are registered and bound under."""
    return {role: f"{prefix}-{role.replace('_', '-')}" for role in GENERATION_ROLES}


def load_generation_asl(*, datasets_bucket: str, region: str = REGION, account: str = ACCOUNT) -> dict[str, Any]:
    """The generation state machine of the stack, from the packaged portable definition
    (``generation.asl.json``, written by ``python -m infra.asl_export --write`` and checked against
    the synthesised stack by tests/infra/test_asl_export.py), with this emulator's names filled in."""
    text = resources.files("docmill_devtools").joinpath("generation.asl.json").read_text(encoding="utf-8")
    values = {
        "${AWS::Region}": region,
        "${AWS::AccountId}": account,
        "${DatasetsBucket}": datasets_bucket,
        **{
            "${Function:" + role + "}": f"arn:aws:lambda:{region}:{account}:function:{name}"
            for role, name in generation_function_names().items()
        },
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    if "${" in text:
        raise ConfigurationError("generation.asl.json has a placeholder docmill dev does not know")
    asl: dict[str, Any] = json.loads(text)
    return asl


def create_state_machine(clients: dict[str, Any], asl: dict[str, Any], name: str = STATE_MACHINE_NAME) -> str:
    sfn = clients["stepfunctions"]
    for machine in sfn.list_state_machines().get("stateMachines", []):
        if machine["name"] == name:
            sfn.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=json.dumps(asl))
            return machine["stateMachineArn"]
    return sfn.create_state_machine(
        name=name, definition=json.dumps(asl), roleArn=f"arn:aws:iam::{ACCOUNT}:role/docmill-local-sfn"
    )["stateMachineArn"]


def bind_functions(
    functions: LocalFunctions,
    clients: dict[str, Any],
    provisioned: Provisioned,
    *,
    generation: bool = True,
) -> dict[str, str]:
    """Register the process function (async, on-failure -> DLQ) and the generation tasks."""
    from functions.process_document.handler import handler as process_handler

    sqs = clients["sqs"]

    def to_dlq(record: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=provisioned.dlq_url, MessageBody=json.dumps(record))

    functions.register(PROCESS_FUNCTION, process_handler, retries=2, on_failure=to_dlq)
    if generation:
        from functions.generation.assemble import handler as assemble_handler
        from functions.generation.generate_batch import handler as batch_handler
        from functions.generation.plan import handler as plan_handler

        handlers = {"plan": plan_handler, "generate_batch": batch_handler, "assemble": assemble_handler}
        for role, name in generation_function_names().items():
            functions.register(name, handlers[role], retries=0)
    arns = functions.create_in(clients["lambda"], clients["iam"])
    provisioned.function_arns = arns
    return arns


def bind_ecs_task(clients: dict[str, Any], *, executor: Any = None) -> Any:
    """The Fargate processing task: a cluster and task definition in the emulator whose tasks
    run ``docmill.runtime.ecs_task.main`` in-process (``docmill_devtools.local_ecs``)."""
    from docmill.runtime import ecs_task
    from docmill_devtools.local_ecs import LocalTasks

    ecs = clients["ecs"]
    ecs.create_cluster(clusterName=ECS_CLUSTER)
    # "bridge": moto 5.2 cannot run awsvpc tasks (the stack's Fargate tasks use awsvpc).
    ecs.register_task_definition(
        family=ECS_TASK_FAMILY,
        networkMode="bridge",
        cpu="2048",
        memory="8192",
        containerDefinitions=[
            {"name": ECS_CONTAINER, "image": "docmill-local", "essential": True, "cpu": 2048, "memory": 8192,
             "command": ["python3", "-m", "functions.process_document.ecs_task"]}
        ],
    )
    tasks = LocalTasks(executor=executor)
    tasks.register(ECS_TASK_FAMILY, ECS_CONTAINER, lambda env: ecs_task.main([], env))
    return tasks.install()


class SqsPoller:
    """Feeds the events queue to the route handler like Lambda's SQS event source mapping."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        route_handler: Callable[[dict[str, Any], Any], Any],
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        retry_after_seconds: int = 1,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.route_handler = route_handler
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.retry_after_seconds = retry_after_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.errors: list[str] = []

    def poll_once(self) -> int:
        """Receive one batch and hand it to route. Returns the number of messages received."""
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        event = sqs_lambda_event(messages, self.queue_arn)
        failed: set[str] = set()
        try:
            result = self.route_handler(event, LocalContext(function_name="docmill-route", function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:docmill-route"))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            log.exception("route failed for the whole batch")
            failed = {m["MessageId"] for m in messages}
        for m in messages:
            if m["MessageId"] in failed:
                # Comes back after the delay; SQS moves it to the DLQ after maxReceiveCount.
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=self.retry_after_seconds
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        self.batches += 1
        return len(messages)

    def drain(self, *, max_batches: int = 100) -> int:
        """Poll until the queue answers empty (tests and scripted runs)."""
        total = 0
        for _ in range(max_batches):
            n = self.poll_once()
            if n == 0:
                break
            total += n
        return total

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    log.exception("poll failed")
                    self._stop.wait(1.0)

        self._thread = threading.Thread(target=loop, name="docmill-dev-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def start_moto_server(host: str, port: int) -> tuple[Any, str]:
    """moto's server in a thread, with Step Functions executing state machines for real."""
    import os
    import urllib.request

    from moto.server import ThreadedMotoServer

    # moto's Step Functions interpreter calls its own Lambda API at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per API call
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    endpoint = f"http://{host}:{port}"
    req = urllib.request.Request(  # noqa: S310 - our own local server
        f"{endpoint}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()  # noqa: S310 - our own local server
    return server, endpoint


@dataclass
class DevEnvironment:
    """Everything ``docmill dev`` runs; ``start()`` then ``info()``; ``stop()`` at the end."""

    settings: Settings
    names: DevNames = field(default_factory=DevNames)
    host: str = "127.0.0.1"
    port: int = 0
    endpoint_url: str | None = None  # an external emulator instead of the in-process moto
    generation: bool = True
    max_receive_count: int = 3
    runtime_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._server: Any = None
        self.endpoint: str | None = None
        self.provisioned: Provisioned | None = None
        self.functions: LocalFunctions | None = None
        self.tasks: Any = None
        self.poller: SqsPoller | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docmill-dev-process")
        self._previous_runtime: Any = None

    def start(self) -> dict[str, Any]:
        if self.endpoint_url:
            self.endpoint = self.endpoint_url
        else:
            from docmill_devtools import moto_gaps

            moto_gaps.emit_delete_marker_events()
            self._server, self.endpoint = start_moto_server(self.host, self.port or free_port(self.host))
        clients = make_clients(self.endpoint)
        for service, client in clients.items():
            aws.set_client(service, client)
        names = self.names
        self.provisioned = provision(clients, names, max_receive_count=self.max_receive_count)
        external = bool(self.endpoint_url)
        settings = self.settings.model_copy(
            update={
                "aws": self.settings.aws.model_copy(
                    update={
                        "raw_bucket": names.raw,
                        "processed_bucket": names.processed,
                        "datasets_bucket": names.datasets,
                        # An external emulator would run Lambda code in its own (Docker) runtime,
                        # where our handlers cannot be bound: route then processes in-process.
                        "process_function": None if external else PROCESS_FUNCTION,
                        "process_inline": external,
                        **({} if external else {
                            "ecs_cluster": ECS_CLUSTER,
                            "ecs_task_definition": ECS_TASK_FAMILY,
                            "ecs_container": ECS_CONTAINER,
                        }),
                    }
                )
            }
        )
        from docmill.runtime.context import Runtime

        self._previous_runtime = runtime_context.install(Runtime(settings=settings, **self.runtime_overrides))
        if not external:
            # One worker: the embedded vector store and the embedder are shared by every document.
            self.functions = LocalFunctions(async_executor=self._executor).install()
            bind_functions(self.functions, clients, self.provisioned, generation=self.generation)
            self.tasks = bind_ecs_task(clients, executor=self._executor)
        if self.generation and not external:
            asl = load_generation_asl(datasets_bucket=names.datasets)
            self.provisioned.state_machine_arn = create_state_machine(clients, asl)
        from functions.route.handler import handler as route_handler

        self.poller = SqsPoller(
            clients["sqs"], self.provisioned.queue_url, self.provisioned.queue_arn, route_handler
        )
        self.poller.start()
        return self.info()

    def info(self) -> dict[str, Any]:
        if self.provisioned is None:
            raise RuntimeError("DevServer.info() before start()")
        return {
            "endpoint": self.endpoint,
            "region": REGION,
            "buckets": {"raw": self.names.raw, "processed": self.names.processed, "datasets": self.names.datasets},
            "queues": {"events": self.provisioned.queue_url, "dlq": self.provisioned.dlq_url},
            "state_machine_arn": self.provisioned.state_machine_arn,
        }

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        self._executor.shutdown(wait=True, cancel_futures=False)
        if self.functions is not None:
            self.functions.uninstall()
        if self.tasks is not None:
            self.tasks.uninstall()
        runtime = runtime_context.install(self._previous_runtime)
        if runtime is not None:
            runtime.close()
        aws.reset_clients()
        if self._server is not None:
            from docmill_devtools import moto_gaps

            self._server.stop()
            moto_gaps.restore()


def example_commands(info: dict[str, Any]) -> list[str]:
    ep = info["endpoint"]
    raw = info["buckets"]["raw"]
    lines = [
        f"aws --endpoint-url {ep} s3 cp report.pdf s3://{raw}/acme/handbook/report.pdf",
        f"aws --endpoint-url {ep} s3 ls --recursive s3://{info['buckets']['processed']}/tenants/acme/collections/",
    ]
    if info.get("state_machine_arn"):
        lines.append(
            f"aws --endpoint-url {ep} stepfunctions start-execution --state-machine-arn {info['state_machine_arn']} "
            "--name run-1 --input '{\"collection\": \"handbook\", \"tenant\": \"acme\", \"dataset\": \"handbook-qa\", \"questions_per_chunk\": 1}'"
        )
        lines.append(f"aws --endpoint-url {ep} s3 ls --recursive s3://{info['buckets']['datasets']}/")
    return lines
