"""Network: the VPC the vector store, the VPC-attached functions and the ECS tasks share."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import NetworkConfig


class Network(Construct):
    """Attributes: ``vpc``, ``workload_sg`` (functions and tasks), ``private_subnets``."""

    def __init__(
        self, scope: Construct, id: str, *, config: NetworkConfig, log_removal: RemovalPolicy
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
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention(config.flow_log_retention_days),
            removal_policy=log_removal,
        )
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.workload_sg = ec2.SecurityGroup(
            self,
            "WorkloadSg",
            vpc=self.vpc,
            allow_all_outbound=True,
            description="docmill functions and ECS tasks (egress to AWS APIs, the vector store, the LLM)",
        )


_RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}


def retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch Logs retention that keeps at least ``days`` days."""
    for allowed in sorted(_RETENTION_DAYS):
        if allowed >= days:
            return getattr(logs.RetentionDays, _RETENTION_DAYS[allowed])
    return logs.RetentionDays.TEN_YEARS
