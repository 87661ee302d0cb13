"""Provisioning the k-NN index (docmill.vectorstores.provision) against the strict OpenSearch double.

The double answers over real HTTP like OpenSearch 2.x does (and like its security plugin's REST
API on a managed domain); the master user's secret lives in moto's Secrets Manager.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from docmill.errors import TransientError, VectorStoreError, VectorStoreRequestError
from docmill.retry import RetryPolicy
from docmill.vectorstores.opensearch import app_role_body, index_body
from docmill.vectorstores.provision import APP_ROLE, IndexProperties, index_settings, provision_index
from tests.support.opensearch_double import OpenSearchDouble

MASTER = ("admin", "M4ster!pw")


@pytest.fixture
def secret_arn(aws_env: None) -> Iterator[str]:
    import boto3
    from moto import mock_aws

    from docmill import aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(
            Name="master", SecretString=json.dumps({"username": MASTER[0], "password": MASTER[1]})
        )["ARN"]
        aws.set_client("secretsmanager", client)
        yield arn


@pytest.fixture
def domain() -> Iterator[OpenSearchDouble]:
    with OpenSearchDouble(basic_auth=MASTER) as double:
        yield double


def props(endpoint: str, **overrides: Any) -> IndexProperties:
    values: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
        "Kind": "domain",
        "Endpoint": endpoint,
        "Index": "docmill-chunks",
        # CloudFormation hands every property over as a string
        "Dimension": "8",
        "Shards": "2",
        "Replicas": "1",
        "Region": "us-east-1",
        "BackendRoles": ["arn:aws:iam::123456789012:role/route", "arn:aws:iam::123456789012:role/process"],
        **overrides,
    }
    return IndexProperties.model_validate(values)


def no_sleep(_seconds: float) -> None:
    return None


def test_given_a_new_domain_when_provisioned_then_the_index_has_the_library_mapping_and_shard_layout(
    domain: OpenSearchDouble, secret_arn: str
) -> None:
    p = props(domain.url, MasterSecretArn=secret_arn)

    result = provision_index(p, sleep=no_sleep)

    assert (result.outcome, result.index, result.physical_id) == ("created", "docmill-chunks", f"{domain.url}/docmill-chunks")
    expected = index_body(index_settings(p, MASTER), 8)
    assert domain.indices["docmill-chunks"].mapping == expected["mappings"]
    assert domain.indices["docmill-chunks"].settings["number_of_shards"] == 2
    assert domain.indices["docmill-chunks"].settings["number_of_replicas"] == 1


def test_given_a_domain_when_provisioned_then_the_app_roles_get_an_index_scoped_role(
    domain: OpenSearchDouble, secret_arn: str
) -> None:
    provision_index(props(domain.url, MasterSecretArn=secret_arn), sleep=no_sleep)

    assert domain.security["roles"][APP_ROLE] == app_role_body("docmill-chunks")
    assert domain.security["roles"][APP_ROLE]["index_permissions"][0]["index_patterns"] == ["docmill-chunks"]
    assert domain.security["rolesmapping"][APP_ROLE] == {
        "backend_roles": ["arn:aws:iam::123456789012:role/route", "arn:aws:iam::123456789012:role/process"]
    }


def test_given_the_index_exists_with_the_same_dimension_when_provisioned_again_then_it_is_kept(
    domain: OpenSearchDouble, secret_arn: str
) -> None:
    p = props(domain.url, MasterSecretArn=secret_arn)
    provision_index(p, sleep=no_sleep)
    uuid = domain.indices["docmill-chunks"].uuid

    result = provision_index(p, sleep=no_sleep)

    assert result.outcome == "exists"
    assert domain.indices["docmill-chunks"].uuid == uuid
    creations = [r for r in domain.requests if r["method"] == "PUT" and r["path"] == "/docmill-chunks"]
    assert len(creations) == 1


def test_given_the_index_exists_with_another_dimension_when_provisioned_then_it_is_refused_untouched(
    domain: OpenSearchDouble, secret_arn: str
) -> None:
    provision_index(props(domain.url, MasterSecretArn=secret_arn, Dimension="16"), sleep=no_sleep)

    with pytest.raises(VectorStoreError, match="16-d vectors, not 8-d"):
        provision_index(props(domain.url, MasterSecretArn=secret_arn), sleep=no_sleep)
    assert domain.indices["docmill-chunks"].properties["embedding"]["dimension"] == 16


def test_given_security_still_settling_when_provisioned_then_it_waits_on_the_retry_policy(
    domain: OpenSearchDouble, secret_arn: str
) -> None:
    domain.fail_next(403, times=2)
    domain.fail_next(503, times=1)
    sleeps: list[float] = []

    result = provision_index(props(domain.url, MasterSecretArn=secret_arn), sleep=sleeps.append)

    assert result.outcome == "created"
    assert len(sleeps) == 3
    # equal jitter on a 2 s base: each wait within [ceiling / 2, ceiling], the ceiling doubling
    for retry, wait in enumerate(sleeps):
        ceiling = min(30.0, 2.0 * 2**retry)
        assert ceiling / 2 <= wait <= ceiling


def test_given_a_store_that_never_settles_when_provisioned_then_it_gives_up_at_the_deadline(
    domain: OpenSearchDouble, secret_arn: str
) -> None:
    domain.fail_next(503, times=10_000)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(TransientError, match="still failing"):
        provision_index(
            props(domain.url, MasterSecretArn=secret_arn),
            sleep=sleep,
            clock=lambda: now[0],
            retry=RetryPolicy(max_retries=1_000, base_delay=2.0, max_delay=30.0, deadline=300.0),
        )
    assert now[0] <= 300.0
    assert 5 < len(domain.requests) < 100  # retried, but bounded by the deadline, not the 1000 retries


def test_given_wrong_master_credentials_then_the_refusal_is_typed_once_the_deadline_passes(
    secret_arn: str,
) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with OpenSearchDouble(basic_auth=("admin", "another")) as double:
        with pytest.raises(TransientError, match="create role"):
            provision_index(props(double.url, MasterSecretArn=secret_arn), sleep=sleep, clock=lambda: now[0])
        assert not double.indices


def test_given_a_request_the_store_refuses_then_it_is_a_typed_error_at_once(
    domain: OpenSearchDouble, secret_arn: str
) -> None:
    sleeps: list[float] = []

    # an upper-case index name is what a real node refuses (400 invalid_index_name_exception)
    with pytest.raises(VectorStoreRequestError, match="invalid_index_name_exception"):
        provision_index(props(domain.url, MasterSecretArn=secret_arn, Index="Docmill-Chunks"), sleep=sleeps.append)
    assert sleeps == []
    assert not domain.indices


def test_given_a_serverless_collection_when_provisioned_then_it_signs_for_aoss_and_maps_no_roles(
    aws_env: None,
) -> None:
    with OpenSearchDouble(serverless=True, sigv4_service="aoss", sigv4_region="eu-west-1") as double:
        result = provision_index(props(double.url, Kind="serverless", Region="eu-west-1"), sleep=no_sleep)

        assert (result.outcome, result.kind, result.mapped_roles) == ("created", "serverless", 0)
        assert "number_of_shards" not in double.indices["docmill-chunks"].settings
        assert not [r for r in double.requests if r["path"].startswith("/_plugins")]
        assert "/eu-west-1/aoss/aws4_request" in double.requests[-1]["headers"]["authorization"]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"MasterSecretArn": None}, "MasterSecretArn"),
        ({"Dimension": "0"}, "Dimension"),
        ({"Engine": "annoy"}, "Engine"),
        ({"Shard": "2"}, "Shard"),  # a misspelt property is refused, not ignored
    ],
)
def test_given_bad_properties_then_validation_names_the_problem(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        props("https://search.example.com", **overrides)
