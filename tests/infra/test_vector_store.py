"""Vector store construct (domain and Serverless) and the index custom resource."""

from __future__ import annotations

import json

from tests.infra.conftest import Synth


def _domain(synth: Synth) -> dict:
    (domain,) = synth.resources("AWS::OpenSearchService::Domain").values()
    return domain["Properties"]


def test_domain_is_in_the_vpc_encrypted_https_only_with_fine_grained_access(synth: Synth) -> None:
    d = _domain(synth)
    assert d["EngineVersion"] == "OpenSearch_2.19"
    assert d["EncryptionAtRestOptions"]["Enabled"] is True
    assert d["EncryptionAtRestOptions"]["KmsKeyId"]["Ref"].startswith("StorageDataKey")
    assert d["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert d["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert d["DomainEndpointOptions"]["TLSSecurityPolicy"] == "Policy-Min-TLS-1-2-2019-07"
    sec = d["AdvancedSecurityOptions"]
    assert sec["Enabled"] is True and sec["InternalUserDatabaseEnabled"] is True
    # The master password is a Secrets Manager dynamic reference, never a literal.
    password = json.dumps(sec["MasterUserOptions"]["MasterUserPassword"])
    assert "resolve:secretsmanager" in password and "VectorStoreMasterUser" in password
    assert d["VPCOptions"]["SubnetIds"] and d["VPCOptions"]["SecurityGroupIds"]
    (secret,) = synth.resources("AWS::SecretsManager::Secret").values()
    assert secret["Properties"]["GenerateSecretString"]["GenerateStringKey"] == "password"
    assert secret["Properties"]["KmsKeyId"]["Fn::GetAtt"][0].startswith("StorageDataKey")


def test_domain_security_group_admits_https_from_workloads_only(synth: Synth) -> None:
    ingress = [
        r["Properties"]
        for r in synth.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"]["Fn::GetAtt"][0].startswith("VectorStoreSg")
    ]
    assert len(ingress) == 1
    assert (ingress[0]["FromPort"], ingress[0]["ToPort"]) == (443, 443)
    assert ingress[0]["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith("NetworkWorkloadSg")


def test_index_custom_resource_carries_the_mapping_parameters_and_role_mapping(synth: Synth) -> None:
    (index,) = synth.resources("Custom::DocmillIndex").values()
    p = index["Properties"]
    assert (p["Kind"], p["Index"], p["Dimension"], p["Engine"], p["SpaceType"]) == (
        "domain",
        "docmill-chunks",
        384,
        "faiss",
        "innerproduct",
    )
    mapped = {r["Fn::GetAtt"][0] for r in p["BackendRoles"]}
    # Every role that reads or writes the index is mapped inside the domain.
    for prefix in (
        "IngestionRouteServiceRole",
        "IngestionProcessServiceRole",
        "IngestionProcessTaskTaskRole",
        "GenerationGenerateBatchServiceRole",
    ):
        assert any(m.startswith(prefix) for m in mapped), prefix
    assert p["MasterSecretArn"]["Ref"].startswith("VectorStoreMasterUser")
    assert any(d.startswith("VectorStoreDomain") for d in index["DependsOn"])


def test_given_each_vector_store_kind_then_the_index_properties_satisfy_the_library_contract(synth: Synth) -> None:
    from docmill.vectorstores.provision import IndexProperties

    def deployed(value: object) -> object:
        # CloudFormation resolves references and hands every value to the handler as a string
        if isinstance(value, list):
            return [deployed(v) for v in value]
        return str(value) if isinstance(value, (str, int, float)) else "resolved-at-deploy"

    for template in (None, synth.variants["variant-serverless"]):
        (index,) = synth.resources("Custom::DocmillIndex", template).values()
        values = {k: deployed(v) for k, v in index["Properties"].items()}
        props = IndexProperties.model_validate(values)
        assert props.Dimension == 384 and props.Index == "docmill-chunks"


def test_serverless_collection_has_encryption_network_and_data_access_policies(synth: Synth) -> None:
    tpl = synth.variants["variant-serverless"]
    (collection,) = synth.resources("AWS::OpenSearchServerless::Collection", tpl).values()
    assert collection["Properties"]["Type"] == "VECTORSEARCH"
    policies = {
        r["Properties"]["Type"]: r
        for r in synth.resources("AWS::OpenSearchServerless::SecurityPolicy", tpl).values()
    }
    assert set(policies) == {"encryption", "network"}
    enc = json.dumps(policies["encryption"]["Properties"]["Policy"])
    assert '\\"AWSOwnedKey\\":false' in enc and "KmsARN" in enc
    net = json.dumps(policies["network"]["Properties"]["Policy"])
    assert '\\"AllowFromPublic\\":false' in net and "SourceVPCEs" in net
    (access,) = synth.resources("AWS::OpenSearchServerless::AccessPolicy", tpl).values()
    text = json.dumps(access["Properties"]["Policy"])
    assert "Reader" in text and "CreateIndexFn" in text  # the granted role and the custom resource's role
    assert "aoss:*" not in text
    (index,) = synth.resources("Custom::DocmillIndex", tpl).values()
    assert index["Properties"]["Kind"] == "serverless"
    assert any(d.startswith("VectorStoreDataAccessPolicy") for d in index["DependsOn"])


def test_domain_publishes_audit_logs_next_to_slow_and_application_logs(synth: Synth) -> None:
    # Given the dev stage's domain
    publishing = _domain(synth)["LogPublishingOptions"]
    # When its log publishing options are read
    # Then audit logs (fine-grained access control) are published too, each to an encrypted log group
    assert set(publishing) == {"AUDIT_LOGS", "ES_APPLICATION_LOGS", "SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS"}
    assert all(option["Enabled"] is True for option in publishing.values())
    audit_group = publishing["AUDIT_LOGS"]["CloudWatchLogsLogGroupArn"]["Fn::GetAtt"][0]
    assert audit_group.startswith("VectorStoreAuditLogs")
    assert "KmsKeyId" in synth.template["Resources"][audit_group]["Properties"]
