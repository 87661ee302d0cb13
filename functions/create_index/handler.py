"""CloudFormation custom resource (``custom_resources.Provider``): the docmill k-NN index.

Create/Update: ``docmill.vectorstores.provision`` (library layer) maps the application roles and
creates the index, or keeps the one that exists. Delete keeps the index: it holds the user's data.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    CloudFormationCustomResourceBaseModel,
    CloudFormationCustomResourceDeleteModel,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from docmill.vectorstores.provision import IndexProperties, provision_index

logger = Logger(service="docmill-create-index")


class CreateOrUpdate(CloudFormationCustomResourceBaseModel):
    request_type: Literal["Create", "Update"] = Field(alias="RequestType")
    resource_properties: IndexProperties = Field(alias="ResourceProperties")


IndexEvent = Annotated[CreateOrUpdate | CloudFormationCustomResourceDeleteModel, Field(discriminator="request_type")]


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=IndexEvent)
    if not isinstance(request, CreateOrUpdate):
        return {"PhysicalResourceId": request.physical_resource_id}
    result = provision_index(request.resource_properties)
    logger.info("index ready", extra=result.model_dump())
    return {"PhysicalResourceId": result.physical_id, "Data": {"IndexName": result.index}}
