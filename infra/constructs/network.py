"""Network: the VPC the vector store, the VPC-attached functions and the ECS tasks share."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.config import NetworkConfig
from infra.constructs.log_groups import LogGroups


class Network(Construct):
    """Attributes: ``vpc``, ``workload_sg`` (functions and tasks), ``private_subnets``."""

    def __init__(
        self, scope: Construct, id: str, *, config: NetworkConfig, log_groups: LogGroups
    ) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=config.max_azs,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ],
            # S3 traffic (raw/processed/datasets, ECR layers) stays off the NAT gateway.
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        flow_logs = log_groups.create(self, "FlowLogs", retention_days=config.flow_log_retention_days)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.workload_sg = ec2.SecurityGroup(
            self,
            "WorkloadSg",
            vpc=self.vpc,
            allow_all_outbound=True,
            description="docmill functions and ECS tasks (egress to AWS APIs, the vector store, the LLM)",
        )
