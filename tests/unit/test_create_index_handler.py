"""The index custom resource handler (functions/create_index): a typed CloudFormation event in,
one library call (docmill.vectorstores.provision), the Provider framework's answer out.

OpenSearch cannot run on this machine: the strict double answers over real HTTP, and the master
user's secret lives in moto's Secrets Manager.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from functions.create_index import handler as h
from tests.support.opensearch_double import OpenSearchDouble

MASTER = ("admin", "M4ster!pw")


class Context:
    function_name = "create-index"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:create-index"
    aws_request_id = "req-1"


def cfn_event(request_type: str, properties: dict[str, Any], physical_id: str | None = None) -> dict[str, Any]:
    """What CloudFormation sends through the Provider framework (every property value a string)."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/docmill/1",
        "RequestId": "r-1",
        "LogicalResourceId": "VectorStoreIndex",
        "ResourceType": "Custom::DocmillIndex",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider", **properties},
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


@pytest.fixture
def secret_arn(aws_env: None) -> Iterator[str]:
    import boto3
    from moto import mock_aws

    from docmill import aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        secret = json.dumps({"username": MASTER[0], "password": MASTER[1]})
        arn = client.create_secret(Name="master", SecretString=secret)["ARN"]
        aws.set_client("secretsmanager", client)
        yield arn


def domain_properties(endpoint: str, secret_arn: str) -> dict[str, Any]:
    return {
        "Kind": "domain", "Endpoint": endpoint, "Index": "docmill-chunks", "Dimension": "384",
        "Engine": "faiss", "SpaceType": "innerproduct", "EfConstruction": "256", "M": "16", "EfSearch": "256",
        "Shards": "2", "Replicas": "1", "Region": "us-east-1", "MasterSecretArn": secret_arn,
        "BackendRoles": ["arn:aws:iam::123456789012:role/route"],
    }


def test_given_a_create_event_when_handled_then_the_index_exists_and_the_provider_gets_its_id(secret_arn: str) -> None:
    with OpenSearchDouble(basic_auth=MASTER) as double:
        answer = h.handler(cfn_event("Create", domain_properties(double.url, secret_arn)), Context())

        assert answer == {"PhysicalResourceId": f"{double.url}/docmill-chunks", "Data": {"IndexName": "docmill-chunks"}}
        assert double.indices["docmill-chunks"].properties["embedding"]["dimension"] == 384
        assert double.security["rolesmapping"]["docmill_app"] == {"backend_roles": ["arn:aws:iam::123456789012:role/route"]}


def test_given_an_update_event_when_the_index_exists_then_it_is_kept(secret_arn: str) -> None:
    with OpenSearchDouble(basic_auth=MASTER) as double:
        properties = domain_properties(double.url, secret_arn)
        h.handler(cfn_event("Create", properties), Context())
        uuid = double.indices["docmill-chunks"].uuid

        answer = h.handler(cfn_event("Update", properties, physical_id=f"{double.url}/docmill-chunks"), Context())

        assert answer["PhysicalResourceId"] == f"{double.url}/docmill-chunks"
        assert double.indices["docmill-chunks"].uuid == uuid


def test_given_a_delete_event_then_the_index_is_kept_and_nothing_is_called() -> None:
    with OpenSearchDouble(basic_auth=MASTER) as double:
        properties = domain_properties(double.url, "arn:aws:secretsmanager:us-east-1:123456789012:secret:unused")

        answer = h.handler(cfn_event("Delete", properties, physical_id="ep/docmill-chunks"), Context())

        assert answer == {"PhysicalResourceId": "ep/docmill-chunks"}
        assert double.requests == []


def test_given_a_misspelt_property_then_the_event_is_refused_before_any_request() -> None:
    with OpenSearchDouble(basic_auth=MASTER) as double:
        properties = domain_properties(double.url, "arn:unused")
        properties["Replica"] = properties.pop("Replicas")

        with pytest.raises(ValidationError, match="Replica"):
            h.handler(cfn_event("Create", properties), Context())
        assert double.requests == []


def test_the_handler_stays_thin() -> None:
    # Given the handler module, then it is a parse, one library call and an answer: no client, no retry
    source = Path(h.__file__).read_text()
    assert len(source.splitlines()) < 60
    assert "sleep" not in source and "urllib" not in source and "botocore" not in source
