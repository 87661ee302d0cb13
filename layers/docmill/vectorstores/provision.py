"""Provision docmill's k-NN index on a new OpenSearch domain or Serverless collection.

The stack's index custom resource (``functions/create_index``) validates its properties with
``IndexProperties`` and calls ``provision_index``; everything it does is here, on the library's
own OpenSearch client and mapping (one definition of the index, whoever creates it):
- managed domain (fine-grained access control): authenticate as the master user whose
  credentials live in Secrets Manager, and map the application IAM roles to a ``docmill_app``
  role limited to the index (the application signs its requests with SigV4);
- Serverless collection: sign with SigV4 (service ``aoss``); its data-access policy grants access;
- then create the index, or keep it when it already holds vectors of this dimension (an index
  of another dimension is refused: it holds someone's data).

A domain or collection created a moment ago answers 401/403 while its security settles, 5xx, or
nothing at all while DNS and the VPC endpoint settle: each request is retried on the one retry
policy with a deadline (``SETTLING``) instead of failing the deployment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from docmill import aws
from docmill.config import OpenSearchSettings
from docmill.errors import ConfigurationError
from docmill.retry import RetryPolicy
from docmill.vectorstores.opensearch import RETRY_STATUSES, OpenSearchStore

APP_ROLE = "docmill_app"
#: until the deadline, not a number of tries: how long a new domain takes to settle varies
SETTLING = RetryPolicy(max_retries=1_000, base_delay=2.0, max_delay=30.0, deadline=300.0)
SETTLING_STATUSES = RETRY_STATUSES | {401, 403}


class IndexProperties(BaseModel):
    """The custom resource's properties, named as the stack sets them (``infra/constructs/
    vector_search.py``). CloudFormation delivers every value as a string; pydantic converts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ServiceToken: str | None = None  # CloudFormation adds it to every custom resource's properties
    Kind: Literal["domain", "serverless"]
    Endpoint: str = Field(min_length=1)
    Index: str = Field(min_length=1)
    Dimension: int = Field(gt=0)
    Engine: Literal["faiss", "lucene", "nmslib"] = "faiss"
    SpaceType: Literal["cosinesimil", "innerproduct", "l2"] = "innerproduct"
    EfConstruction: int = 256
    M: int = 16
    EfSearch: int = 256
    Shards: int = 2
    Replicas: int = 1
    Region: str
    MasterSecretArn: str | None = None
    BackendRoles: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _domain_has_a_master_user(self) -> IndexProperties:
        if self.Kind == "domain" and not self.MasterSecretArn:
            raise ValueError("a domain index needs MasterSecretArn (the fine-grained access control master user)")
        return self

    @property
    def physical_id(self) -> str:
        return f"{self.Endpoint}/{self.Index}"


class ProvisionResult(BaseModel):
    index: str
    physical_id: str
    kind: Literal["domain", "serverless"]
    outcome: Literal["created", "exists"]
    mapped_roles: int = 0


def master_credentials(secret_arn: str) -> tuple[str, str]:
    """The domain's master user, from the Secrets Manager secret the stack generated."""
    value = aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        secret = json.loads(value)
        return str(secret["username"]), str(secret["password"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"secret {secret_arn} is not a {{username, password}} JSON object") from exc


def index_settings(props: IndexProperties, master: tuple[str, str] | None) -> OpenSearchSettings:
    """The library's OpenSearch settings for the index the properties describe."""
    url = props.Endpoint if "://" in props.Endpoint else f"https://{props.Endpoint}"
    auth: dict[str, Any] = {"auth": "sigv4"}
    if master is not None:
        auth = {"auth": "basic", "username": master[0], "password": master[1]}
    return OpenSearchSettings(
        url=url.rstrip("/"),
        index=props.Index,
        service="aoss" if props.Kind == "serverless" else "es",
        region=props.Region,
        engine=props.Engine,
        space_type=props.SpaceType,
        ef_construction=props.EfConstruction,
        m=props.M,
        ef_search=props.EfSearch,
        shards=props.Shards,
        replicas=props.Replicas,
        **auth,
    )


def provision_index(
    props: IndexProperties,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    retry: RetryPolicy = SETTLING,
) -> ProvisionResult:
    """Map the application roles (domain), then create the index or keep the one that exists.

    Raises ``VectorStoreError`` for an index of another dimension, ``VectorStoreRequestError``
    for a refused request and ``TransientError`` when the store is still not answering at the
    deadline."""
    master = master_credentials(props.MasterSecretArn) if props.MasterSecretArn else None
    store = OpenSearchStore(
        index_settings(props, master), sleep=sleep, clock=clock, retry=retry, retry_statuses=SETTLING_STATUSES
    )
    try:
        roles = [role for role in props.BackendRoles if role]
        if props.Kind == "domain":
            store.grant_index_role(APP_ROLE, roles)
        existed = store.index_dimension() is not None
        store.ensure_index(props.Dimension)
    finally:
        store.close()
    return ProvisionResult(
        index=props.Index,
        physical_id=props.physical_id,
        kind=props.Kind,
        outcome="exists" if existed else "created",
        mapped_roles=len(roles) if props.Kind == "domain" else 0,
    )
