"""The chat API as it runs on AWS: the Lambda handler (Mangum) fed HTTP API events carrying
the Cognito claims API Gateway verified, with moto's S3, SQS and DynamoDB and the real
route -> process pipeline (tests/support/runtime_env) writing document status."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docmill import aws
from tests.support.runtime_env import RuntimeEnv, runtime_env

EVENTS = Path(__file__).resolve().parents[1] / "events"
TABLE = "docmill-test-chat-state"


class _Context:
    function_name = "chat_api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:chat_api"
    aws_request_id = "req-1"


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[RuntimeEnv]:
    with runtime_env(tmp_path) as env:
        import boto3

        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                    {"AttributeName": "sk", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}])
        aws.set_client("dynamodb", dynamodb)
        env.runtime.settings.api.state_table = TABLE
        import functions.chat_api.handler as handler

        handler._adapter = None  # built from this runtime
        yield env
        handler._adapter = None


def call(method: str, path: str, *, tenant: str | None = "acme", admin: bool = True, body: bytes | None = None,
         content_type: str = "application/json") -> tuple[int, dict[str, str], Any]:
    from functions.chat_api.handler import handler

    event = copy.deepcopy(json.loads((EVENTS / "http_api_chat_documents.json").read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"]["content-type"] = content_type
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    if tenant is None:
        del event["requestContext"]["authorizer"]
    else:
        claims["custom:tenant"] = tenant
        claims["cognito:groups"] = "[admin]" if admin else "[]"
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    out = handler(event, _Context())
    text = base64.b64decode(out["body"]).decode() if out.get("isBase64Encoded") else out["body"]
    return out["statusCode"], out.get("headers", {}), json.loads(text) if text else None


def multipart(name: str, data: bytes, collection: str) -> tuple[bytes, str]:
    boundary = "docmilltestboundary"
    parts = (f'--{boundary}\r\nContent-Disposition: form-data; name="collection"\r\n\r\n{collection}\r\n'
             f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
             f"Content-Type: text/markdown\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return parts, f"multipart/form-data; boundary={boundary}"


def test_identity_comes_from_the_verified_claims(env: RuntimeEnv) -> None:
    assert call("GET", "/api/v1/health", tenant=None)[0] == 200
    status, _, body = call("GET", "/api/v1/documents", tenant=None)
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    assert call("GET", "/api/v1/me")[2] == {"tenant": "acme", "user": "alice", "admin": True}
    assert call("GET", "/api/v1/me", admin=False)[2]["admin"] is False


def test_upload_goes_through_the_raw_bucket_and_the_pipeline_writes_the_status(env: RuntimeEnv) -> None:
    body, ctype = multipart("refunds.md", b"# Refunds\n\nRefunds are paid within 30 days of purchase.\n", "policies")
    status, _, created = call("POST", "/api/v1/documents", body=body, content_type=ctype)
    assert status == 202, created
    key = f"acme/policies/{created['id']}/refunds.md"
    assert env.s3.head_object(Bucket=env.names.raw, Key=key)["ContentLength"] > 0
    assert call("GET", f"/api/v1/documents/{created['id']}")[2]["status"] == "queued"
    env.poller.drain()  # S3 event -> queue -> route -> process (which writes the status)
    record = call("GET", f"/api/v1/documents/{created['id']}")[2]
    assert record["status"] == "indexed" and record["chunks"] >= 1
    assert env.chunks("policies", f"s3://{env.names.raw}/{key}")
    # another tenant: 404, as for an unknown id
    assert call("GET", f"/api/v1/documents/{created['id']}", tenant="globex")[0] == 404
    # delete: the object goes, the ObjectRemoved event removes its chunks
    assert call("DELETE", f"/api/v1/documents/{created['id']}")[0] == 200
    env.poller.drain()
    assert not env.chunks("policies", f"s3://{env.names.raw}/{key}")
    assert call("GET", f"/api/v1/documents/{created['id']}")[0] == 404


def test_a_broken_upload_ends_failed_with_its_reason(env: RuntimeEnv) -> None:
    body, ctype = multipart("scan.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage", "policies")
    status, _, created = call("POST", "/api/v1/documents", body=body, content_type=ctype)
    assert status == 202
    env.poller.drain()
    record = call("GET", f"/api/v1/documents/{created['id']}")[2]
    assert record["status"] == "failed" and record["reason"]


def test_presigned_upload_and_notices(env: RuntimeEnv) -> None:
    status, _, presigned = call("POST", "/api/v1/documents/uploads",
                                body=json.dumps({"name": "big.pdf", "collection": "c"}).encode())
    assert status == 201 and presigned["fields"]["key"] == f"acme/c/{presigned['id']}/big.pdf"
    assert call("POST", "/api/v1/notices", admin=False, body=b'{"title": "t", "body": "b"}')[0] == 403
    assert call("POST", "/api/v1/notices", body=b'{"title": "t", "body": "b", "pinned": true}')[0] == 201
    assert len(call("GET", "/api/v1/notices")[2]["notices"]) == 1
    assert call("GET", "/api/v1/notices", tenant="globex")[2]["notices"] == []
    status, _, refused = call("POST", "/api/v1/datasets", body=b'{"collection": "c"}')
    assert status == 501 and "not deployed" in refused["error"]["message"]
