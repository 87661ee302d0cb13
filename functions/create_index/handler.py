"""CloudFormation custom resource (via ``custom_resources.Provider``): create the docmill k-NN index.

Runs inside the VPC next to the vector store. Talks HTTP with the Lambda runtime's botocore (SigV4)
and the standard library; the mapping is the library's (``docmill.vectorstores.opensearch``, from
the layer the stack attaches):
- managed domain (fine-grained access control): authenticates as the master user whose
  credentials live in Secrets Manager, creates the index, and maps the application IAM roles to a
  ``docmill_app`` security role limited to that index (the app signs its requests with SigV4);
- Serverless collection: signs with SigV4 (service ``aoss``); the data-access policy grants access.

Delete keeps the index: it holds the user's data and disappears with the domain/collection anyway.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

logger = Logger(service="docmill-create-index")

APP_ROLE = "docmill_app"
# The data-access / security settings of a fresh collection or domain take a while to apply.
RETRY_STATUSES = {401, 403, 429, 500, 502, 503, 504}
RETRY_SECONDS = 300


class IndexMismatch(Exception):
    """The index exists with a different vector dimension: refuse instead of corrupting it."""


def _settings_args(props: dict[str, Any]) -> dict[str, Any]:
    return {
        "engine": props.get("Engine", "faiss"),
        "space_type": props.get("SpaceType", "innerproduct"),
        "ef_construction": int(props.get("EfConstruction", 256)),
        "m": int(props.get("M", 16)),
        "ef_search": int(props.get("EfSearch", 256)),
        "service": "aoss" if props.get("Kind") == "serverless" else "es",
    }


def library_index_body(props: dict[str, Any]) -> dict[str, Any]:
    """The library's own mapping (docmill.vectorstores.opensearch, from the layer the stack
    always attaches): one definition of the index, whoever creates it."""
    from docmill.config import OpenSearchSettings
    from docmill.vectorstores.opensearch import index_body as body_for

    return body_for(OpenSearchSettings(**_settings_args(props)), int(props["Dimension"]))


def index_body(props: dict[str, Any]) -> dict[str, Any]:
    """The mapping docmill's OpenSearch store reads and writes, plus shard layout on a domain."""
    body = library_index_body(props)
    if props.get("Kind", "domain") == "domain":  # Serverless manages shards and replicas itself
        body["settings"]["index"].update(
            number_of_shards=int(props.get("Shards", 2)), number_of_replicas=int(props.get("Replicas", 1))
        )
    return body


def app_role_body(index: str) -> dict[str, Any]:
    """Least privilege inside the domain: CRUD + search on the docmill index only."""
    return {
        "cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
        "index_permissions": [
            {
                "index_patterns": [index],
                "allowed_actions": [
                    "crud",
                    "search",
                    "indices:admin/mapping/get",
                    "indices:admin/get",
                    "indices:monitor/stats",
                    "indices:admin/refresh*",
                ],
            }
        ],
    }


class Client:
    def __init__(self, endpoint: str, *, kind: str, region: str, basic: tuple[str, str] | None) -> None:
        self.endpoint = endpoint.rstrip("/")
        if not self.endpoint.startswith("https://"):
            self.endpoint = "https://" + self.endpoint
        self.kind = kind
        self.region = region
        self.basic = basic

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        url = self.endpoint + path
        headers = {"Content-Type": "application/json"}
        if self.basic:
            token = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        else:
            creds = boto3.Session().get_credentials().get_frozen_credentials()
            aws_req = AWSRequest(method=method, url=url, data=data, headers=headers)
            if self.kind == "serverless":  # aoss requires the payload hash header
                import hashlib

                aws_req.headers["x-amz-content-sha256"] = hashlib.sha256(data or b"").hexdigest()
            SigV4Auth(creds, "aoss" if self.kind == "serverless" else "es", self.region).add_auth(aws_req)
            headers = dict(aws_req.headers.items())
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - https endpoint from the stack
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - https endpoint from the stack
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw) if raw else None
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, ok: tuple[int, ...] = (200, 201)
    ) -> Any:
        deadline = time.monotonic() + RETRY_SECONDS
        delay = 2.0
        while True:
            try:
                status, payload = self.request(method, path, body)
            except (urllib.error.URLError, TimeoutError) as exc:  # DNS/VPC endpoint still settling
                status, payload = 503, str(exc)
            if status in ok:
                return status, payload
            if status not in RETRY_STATUSES or time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path} -> {status}: {payload}")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def _master_credentials(secret_arn: str) -> tuple[str, str]:
    value = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    return value["username"], value["password"]


def ensure_index(client: Client, props: dict[str, Any]) -> str:
    index = props["Index"]
    status, _ = client.call("HEAD", f"/{index}", ok=(200, 404))
    if status == 404:
        client.call("PUT", f"/{index}", index_body(props))
        return "created"
    _, mapping = client.call("GET", f"/{index}/_mapping")
    dims = {
        name: m.get("mappings", {}).get("properties", {}).get("embedding", {}).get("dimension")
        for name, m in (mapping or {}).items()
    }
    expected = int(props["Dimension"])
    wrong = {name: d for name, d in dims.items() if d is not None and int(d) != expected}
    if wrong:
        raise IndexMismatch(f"index {index} has embedding dimension {wrong}, expected {expected}")
    return "exists"


def map_app_roles(client: Client, props: dict[str, Any]) -> None:
    roles = [r for r in props.get("BackendRoles", []) if r]
    client.call("PUT", f"/_plugins/_security/api/roles/{APP_ROLE}", app_role_body(props["Index"]))
    client.call("PUT", f"/_plugins/_security/api/rolesmapping/{APP_ROLE}", {"backend_roles": roles})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    props = event["ResourceProperties"]
    physical_id = event.get("PhysicalResourceId") or f"{props['Endpoint']}/{props['Index']}"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": physical_id}
    kind = props.get("Kind", "domain")
    basic = _master_credentials(props["MasterSecretArn"]) if kind == "domain" else None
    client = Client(props["Endpoint"], kind=kind, region=props["Region"], basic=basic)
    if kind == "domain":
        map_app_roles(client, props)
    outcome = ensure_index(client, props)
    logger.info("index ready", extra={"index": props["Index"], "outcome": outcome, "kind": kind})
    return {
        "PhysicalResourceId": f"{props['Endpoint']}/{props['Index']}",
        "Data": {"IndexName": props["Index"]},
    }
