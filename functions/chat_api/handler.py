"""chat_api: the chat API's ASGI application (docmill.api) behind API Gateway (HTTP API).

Mangum adapts the HTTP API event to ASGI, so the Lambda runs the very application that
``docmill serve`` runs locally: same routes, validation, errors and OpenAPI. (The Lambda Web
Adapter would need a web server process and an extension layer inside the function;
Powertools' event handler would mean a second set of routes to keep in step with FastAPI.)
Mangum keeps the raw event in ``scope["aws.event"]``, where the API reads the Cognito claims
that API Gateway's JWT authorizer verified: identity never comes from the request itself.

The app is built on the first invocation (cold start), from the function's environment.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from docmill import aws
from docmill.runtime import context as runtime_context
from docmill.runtime.environment import ChatApiEnvironment
from docmill.runtime.observability import observability

obs = observability("chat_api")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics
_adapter: Any = None


def _asgi() -> Any:
    global _adapter
    if _adapter is None:
        from mangum import Mangum

        from docmill.api.app import create_app
        from docmill.api.wiring import build_aws_services

        rt = runtime_context.current(ChatApiEnvironment, os.environ)
        services = build_aws_services(rt.settings, clients=aws.client, embedder=rt.embedder,
                                      vector_store=rt.vector_store, llm=rt.llm)
        _adapter = Mangum(create_app(services), lifespan="off", api_gateway_base_path="/")
    return _adapter


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = _asgi()(event, context)
    metrics.add_metric(name=f"ApiResponses_{str(response.get('statusCode', 0))[0]}xx", unit=MetricUnit.Count, value=1)
    return response
