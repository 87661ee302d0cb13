"""Vector store: an OpenSearch Service domain or an OpenSearch Serverless vector collection
(chosen by ``vector_store.kind``), and the docmill index created by a custom resource.

Access model
- domain: in the VPC (security group allows 443 from the workload SG only), encryption at rest
  (KMS) and node-to-node, HTTPS only with TLS 1.2, fine-grained access control. The master user
  is an internal user whose password is generated into Secrets Manager. Application roles sign
  with SigV4 and are mapped by the custom resource to a ``docmill_app`` role on the index only.
- serverless: encryption policy (the data key when there is one), a network policy that only
  admits the stack's VPC endpoint, and a data-access policy naming exactly the granted roles.
``grant_read_write(grantee)`` gives a role IAM access AND inside-the-store access; the stack calls
``finalize()`` once after its grants, which creates the data-access policy (Serverless) and the
index custom resource (domain: with the role mapping).
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import paths
from infra.config import VectorStoreConfig
from infra.constructs.log_groups import LogGroups
from infra.constructs.network import Network


class VectorSearchDomain(Construct):
    """Attributes: ``kind``, ``endpoint`` (https URL), ``index_name``, ``service`` (SigV4 name: es|aoss),
    ``domain`` or ``collection``, ``master_secret`` (domain only), ``index_resource`` (the custom
    resource), ``index_function`` (its Lambda), ``security_group``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: VectorStoreConfig,
        network: Network,
        key: kms.IKey | None,
        log_groups: LogGroups,
        removal: RemovalPolicy,
        layer: lambda_.ILayerVersion | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        self.kind = config.kind
        self.index_name = config.index_name
        self._roles: list[iam.IRole] = []
        self._finalized = False
        self.index_resource: CustomResource | None = None
        stack = Stack.of(self)
        self.domain: opensearch.Domain | None = None
        self.collection: aoss.CfnCollection | None = None
        self.master_secret: secretsmanager.Secret | None = None
        self.security_group = ec2.SecurityGroup(
            self,
            "Sg",
            vpc=network.vpc,
            allow_all_outbound=False,
            description="docmill vector store (443 from workloads)",
        )
        self.security_group.add_ingress_rule(
            network.workload_sg, ec2.Port.tcp(443), "HTTPS from docmill workloads"
        )

        # The custom resource function is created first so the data-access rules can name its role.
        self.index_function = lambda_.Function(
            self,
            "CreateIndexFn",
            runtime=lambda_.Runtime.PYTHON_3_11,
            code=lambda_.Code.from_asset(str(paths.CREATE_INDEX_CODE)),
            handler=paths.CREATE_INDEX_HANDLER,
            # The library layer gives it docmill's own index mapping (one source of truth).
            layers=[layer] if layer is not None else None,
            timeout=Duration.minutes(10),
            memory_size=256,
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[network.workload_sg],
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_groups.create(self, "CreateIndexLogs", removal=removal),
        )

        if config.kind == "domain":
            self._domain(config, network, key, log_groups, removal)
        else:
            self._serverless_endpoint(self._serverless(config, network, key, stack))
        self._provider = cr.Provider(
            self,
            "IndexProvider",
            on_event_handler=self.index_function,
            log_group=log_groups.create(self, "ProviderLogs", removal=removal),
        )

    def finalize(self) -> CustomResource:
        """After all grants: data-access rules for the granted roles, then the index itself."""
        if self._finalized:
            raise RuntimeError("VectorSearchDomain.finalize() called twice")
        self._finalized = True
        config, stack = self.config, Stack.of(self)
        access = self._data_access_policy(self.collection, config, stack) if self.collection is not None else None
        properties: dict[str, Any] = {
            "Kind": config.kind,
            "Endpoint": self.endpoint,
            "Index": config.index_name,
            "Dimension": config.dimension,
            "Engine": config.engine,
            "SpaceType": config.space_type,
            "EfConstruction": config.ef_construction,
            "M": config.m,
            "EfSearch": config.ef_search,
            "Shards": config.shards,
            "Replicas": config.replicas,
            "Region": stack.region,
        }
        if self.master_secret is not None:
            properties["MasterSecretArn"] = self.master_secret.secret_arn
            properties["BackendRoles"] = [role.role_arn for role in self._roles]
        self.index_resource = CustomResource(
            self,
            "Index",
            service_token=self._provider.service_token,
            properties=properties,
            resource_type="Custom::DocmillIndex",
        )
        for dependency in (self.domain, self.collection, access):
            if dependency is not None:
                self.index_resource.node.add_dependency(dependency)
        return self.index_resource

    # -- managed domain -------------------------------------------------------------------------
    def _domain(
        self,
        config: VectorStoreConfig,
        network: Network,
        key: kms.IKey | None,
        log_groups: LogGroups,
        removal: RemovalPolicy,
    ) -> None:
        self.service = "es"
        self.master_secret = secretsmanager.Secret(
            self,
            "MasterUser",
            description="docmill OpenSearch fine-grained access control master user",
            # The stage's data key (None: the Secrets Manager AWS managed key); grant_read below
            # then gives the index function kms:Decrypt through Secrets Manager only.
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": config.master_user_name}),
                generate_string_key="password",
                password_length=32,
                require_each_included_type=True,
                exclude_characters="\"'\\/@:`",
            ),
        )
        multi_az = config.data_nodes > 1 and len(network.vpc.availability_zones) > 1
        slow_logs = log_groups.create(self, "SlowLogs", removal=removal)
        app_logs = log_groups.create(self, "AppLogs", removal=removal)
        # Who called what on the domain (fine-grained access control's audit log): publishing is
        # switched on here; which categories are recorded is the security plugin's audit config.
        audit_logs = log_groups.create(self, "AuditLogs", removal=removal)
        self.domain = opensearch.Domain(
            self,
            "Domain",
            version=opensearch.EngineVersion.open_search(config.engine_version.removeprefix("OpenSearch_")),
            vpc=network.vpc,
            vpc_subnets=[
                ec2.SubnetSelection(
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    one_per_az=True,
                    availability_zones=network.vpc.availability_zones[: 2 if multi_az else 1],
                )
            ],
            security_groups=[self.security_group],
            capacity=opensearch.CapacityConfig(
                data_nodes=config.data_nodes,
                data_node_instance_type=config.data_node_instance_type,
                master_nodes=config.dedicated_master_nodes or None,
                master_node_instance_type=config.master_node_instance_type
                if config.dedicated_master_nodes
                else None,
                multi_az_with_standby_enabled=False,
            ),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=2)
            if multi_az
            else None,
            ebs=opensearch.EbsOptions(
                volume_size=config.volume_size_gib, volume_type=ec2.EbsDeviceVolumeType.GP3
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(
                master_user_name=config.master_user_name,
                master_user_password=self.master_secret.secret_value_from_json("password"),
            ),
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_search_log_group=slow_logs,
                slow_index_log_enabled=True,
                slow_index_log_group=slow_logs,
                app_log_enabled=True,
                app_log_group=app_logs,
                audit_log_enabled=True,
                audit_log_group=audit_logs,
            ),
            removal_policy=removal,
        )
        # With fine-grained access control the domain policy admits the VPC and FGAC authorises each
        # request (SigV4 role mapping or the master user); the SG keeps everything else out.
        self.domain.add_access_policies(
            iam.PolicyStatement(
                actions=[
                    "es:ESHttpGet",
                    "es:ESHttpHead",
                    "es:ESHttpPost",
                    "es:ESHttpPut",
                    "es:ESHttpDelete",
                    "es:ESHttpPatch",
                ],
                principals=[iam.AnyPrincipal()],
                resources=[f"{self.domain.domain_arn}/*"],
            )
        )
        self.endpoint = f"https://{self.domain.domain_endpoint}"
        self.master_secret.grant_read(self.index_function)

    # -- serverless -----------------------------------------------------------------------------
    def _serverless(
        self, config: VectorStoreConfig, network: Network, key: kms.IKey | None, stack: Stack
    ) -> aoss.CfnCollection:
        self.service = "aoss"
        # Collection names: 3-32 chars, lowercase; unique per account+region.
        name = f"{stack.stack_name}-vectors".lower()[:32]
        encryption_policy: dict[str, Any] = {
            "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}],
        }
        if key is not None:
            encryption_policy.update(AWSOwnedKey=False, KmsARN=key.key_arn)
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKey"],
                    principals=[iam.AnyPrincipal()],
                    resources=["*"],  # key policy: "*" means this key
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"aoss.{stack.region}.amazonaws.com",
                            "kms:CallerAccount": stack.account,
                        }
                    },
                )
            )
        else:
            encryption_policy["AWSOwnedKey"] = True
        enc = aoss.CfnSecurityPolicy(
            self,
            "EncryptionPolicy",
            name=f"{name}-enc"[:32],
            type="encryption",
            policy=stack.to_json_string(encryption_policy),
        )
        self.vpc_endpoint = aoss.CfnVpcEndpoint(
            self,
            "VpcEndpoint",
            name=f"{name}-vpce"[:32],
            vpc_id=network.vpc.vpc_id,
            subnet_ids=network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids,
            security_group_ids=[self.security_group.security_group_id],
        )
        net = aoss.CfnSecurityPolicy(
            self,
            "NetworkPolicy",
            name=f"{name}-net"[:32],
            type="network",
            policy=stack.to_json_string(
                [
                    {
                        "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}],
                        "AllowFromPublic": False,
                        "SourceVPCEs": [self.vpc_endpoint.attr_id],
                    }
                ]
            ),
        )
        self.collection = aoss.CfnCollection(
            self,
            "Collection",
            name=name,
            type="VECTORSEARCH",
            standby_replicas="ENABLED" if config.standby_replicas else "DISABLED",
            description="docmill chunk vectors",
        )
        self.collection.node.add_dependency(enc)
        self.collection.node.add_dependency(net)
        self._roles.append(self.index_function.role)
        self._collection_name = name
        return self.collection

    def _data_access_policy(
        self, collection: aoss.CfnCollection, config: VectorStoreConfig, stack: Stack
    ) -> aoss.CfnAccessPolicy:
        name = self._collection_name
        access = aoss.CfnAccessPolicy(
            self,
            "DataAccessPolicy",
            name=f"{name}-data"[:32],
            type="data",
            policy=stack.to_json_string(
                [
                    {
                        "Rules": [
                            {
                                "ResourceType": "collection",
                                "Resource": [f"collection/{name}"],
                                "Permission": [
                                    "aoss:DescribeCollectionItems",
                                    "aoss:CreateCollectionItems",
                                    "aoss:UpdateCollectionItems",
                                ],
                            },
                            {
                                "ResourceType": "index",
                                "Resource": [f"index/{name}/{config.index_name}"],
                                "Permission": [
                                    "aoss:CreateIndex",
                                    "aoss:DescribeIndex",
                                    "aoss:UpdateIndex",
                                    "aoss:ReadDocument",
                                    "aoss:WriteDocument",
                                ],
                            },
                        ],
                        "Principal": [role.role_arn for role in self._roles],
                    }
                ]
            ),
        )
        return access

    def _serverless_endpoint(self, collection: aoss.CfnCollection) -> None:
        self.endpoint = collection.attr_collection_endpoint
        self.index_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["aoss:APIAccessAll"],
                resources=[collection.attr_arn],
            )
        )

    # -- grants ---------------------------------------------------------------------------------
    def grant_read_write(self, grantee: iam.IGrantable) -> None:
        """IAM permission to call the store, plus the in-store mapping to the index (see finalize)."""
        if self._finalized:
            raise RuntimeError("grant_read_write after finalize(): the role would not be mapped")
        role = getattr(grantee, "role", None) or grantee
        if hasattr(role, "role_arn"):
            self._roles.append(role)
        if self.domain is not None:
            self.domain.grant_index_read_write(self.index_name, grantee)
            # The store sends bulk requests to /_bulk (documents name their index) and checks health.
            self.domain.grant_path_read_write("_bulk", grantee)
            self.domain.grant_path_read("_cluster/health", grantee)
        elif self.collection is not None:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["aoss:APIAccessAll"],
                    resources=[self.collection.attr_arn],
                )
            )

    def environment(self) -> dict[str, str]:
        """Settings for docmill.config.OpenSearchSettings (DOCMILL_OPENSEARCH__*) and the store kind."""
        return {
            "DOCMILL_STORE": "opensearch",
            "DOCMILL_OPENSEARCH__URL": self.endpoint,
            "DOCMILL_OPENSEARCH__INDEX": self.index_name,
            "DOCMILL_OPENSEARCH__AUTH": "sigv4",
            "DOCMILL_OPENSEARCH__SERVICE": self.service,
            "DOCMILL_OPENSEARCH__ENGINE": self.config.engine,
            "DOCMILL_OPENSEARCH__SPACE_TYPE": self.config.space_type,
            "DOCMILL_OPENSEARCH__EF_CONSTRUCTION": str(self.config.ef_construction),
            "DOCMILL_OPENSEARCH__M": str(self.config.m),
            "DOCMILL_OPENSEARCH__EF_SEARCH": str(self.config.ef_search),
        }
