"""The chat API construct in the synthesised stack: an authorizer on every route but health,
throttling and CORS on the stage, the same app image, least-privilege grants."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth, as_list, statements


def _one(synth: Synth, type_: str) -> tuple[str, dict[str, Any]]:
    found = synth.resources(type_)
    assert len(found) == 1, sorted(found)
    return next(iter(found.items()))


def test_every_route_but_health_needs_a_cognito_token(synth: Synth) -> None:
    authorizer_id, authorizer = _one(synth, "AWS::ApiGatewayV2::Authorizer")
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    jwt = authorizer["Properties"]["JwtConfiguration"]
    pool_id = synth.logical_id(synth.stack.chat_api.user_pool)
    client_id = synth.logical_id(synth.stack.chat_api.user_pool_client)
    assert jwt["Audience"] == [{"Ref": client_id}]
    assert pool_id in str(jwt["Issuer"]) and "cognito-idp" in str(jwt["Issuer"])
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"ANY /api/{proxy+}", "GET /api/v1/health"}
    for key, route in routes.items():
        if key == "GET /api/v1/health":
            assert route.get("AuthorizationType", "NONE") == "NONE"
        else:
            assert route["AuthorizationType"] == "JWT" and route["AuthorizerId"] == {"Ref": authorizer_id}


def test_stage_throttles_and_logs_and_the_tenant_claim_is_admin_set(synth: Synth) -> None:
    _, stage = _one(synth, "AWS::ApiGatewayV2::Stage")
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    assert "tenant" in stage["Properties"]["AccessLogSettings"]["Format"]
    _, pool = _one(synth, "AWS::Cognito::UserPool")
    tenant = next(a for a in pool["Properties"]["Schema"] if a["Name"] == "tenant")
    assert tenant["Mutable"] is False
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    _, client = _one(synth, "AWS::Cognito::UserPoolClient")
    assert "custom:tenant" in client["Properties"]["ReadAttributes"]
    assert "custom:tenant" not in client["Properties"].get("WriteAttributes", [])
    assert client["Properties"].get("GenerateSecret") in (None, False)


def test_the_function_runs_the_app_image_with_its_state_table(synth: Synth) -> None:
    fn_id = synth.logical_id(synth.stack.chat_api.function)
    fn = synth.template["Resources"][fn_id]["Properties"]
    assert fn["ImageConfig"]["Command"] == ["functions.chat_api.handler.handler"]
    env = fn["Environment"]["Variables"]
    table_id = synth.logical_id(synth.stack.chat_api.table)
    assert env["DOCMILL_API__STATE_TABLE"] == {"Ref": table_id}
    assert "DOCMILL_API__GENERATION_STATE_MACHINE_ARN" in env
    assert fn["Timeout"] <= 29  # inside API Gateway's 30 s integration timeout
    # The pipeline writes document status: the process function knows the table too.
    process = synth.template["Resources"][synth.logical_id(synth.stack.ingestion.process)]["Properties"]
    assert process["Environment"]["Variables"]["DOCMILL_API__STATE_TABLE"] == {"Ref": table_id}
    table = synth.template["Resources"][table_id]["Properties"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True and "KMSMasterKeyId" in table["SSESpecification"]


def test_grants_are_scoped_to_the_resources(synth: Synth) -> None:
    role_id = synth.logical_id(synth.stack.chat_api.function.role)
    table_id = synth.logical_id(synth.stack.chat_api.table)
    raw_id = synth.logical_id(synth.stack.storage.raw)
    policies = [lid for lid, r in synth.resources("AWS::IAM::Policy").items()
                if {"Ref": role_id} in r["Properties"].get("Roles", [])]
    found = [st for lid, st in statements(synth.template) if lid in policies]
    assert found, "no policy for the chat function"
    actions = {a for st in found for a in as_list(st["Action"])}
    assert not any(a.endswith(":*") or a == "*" for a in actions), actions
    for st in found:
        resources = [str(r) for r in as_list(st["Resource"])]
        for action in as_list(st["Action"]):
            if action.startswith("dynamodb:"):
                assert all(table_id in r for r in resources), st
            if action in ("s3:PutObject", "s3:DeleteObject"):
                assert all(raw_id in r for r in resources), st  # uploads and deletes: raw bucket only
        assert resources != ["*"] or all(a.startswith(("xray:", "ec2:")) for a in as_list(st["Action"])), st
    # The workers may only read and write items of the state table (status updates).
    worker_statements = [st for _, st in statements(synth.template)
                         if any(str(a).startswith("dynamodb:") for a in as_list(st["Action"]))
                         and st not in found]
    assert worker_statements
    for st in worker_statements:
        assert set(as_list(st["Action"])) <= {"dynamodb:GetItem", "dynamodb:PutItem"}
        assert all(table_id in str(r) for r in as_list(st["Resource"]))
