"""Every log group the stacks create is encrypted with the stage's data key, whose policy admits
CloudWatch Logs for this stack's log groups only."""

from __future__ import annotations

from infra.nag import render
from tests.infra.conftest import Synth, as_list


def _logs_statement(key: dict) -> dict:
    found = [st for st in key["Properties"]["KeyPolicy"]["Statement"] if st.get("Sid") == "CloudWatchLogsOfThisStack"]
    assert len(found) == 1
    return found[0]


def test_every_log_group_uses_the_data_key_and_a_generated_name(synth: Synth) -> None:
    # Given the dev stack and the Serverless variant (both have a data key)
    for template in (synth.template, synth.variants["variant-serverless"]):
        groups = synth.resources("AWS::Logs::LogGroup", template)
        # When the log groups are read
        # Then each is encrypted with the data key and named by CloudFormation (stack prefix)
        assert len(groups) >= 3
        for lid, group in groups.items():
            props = group["Properties"]
            assert props["KmsKeyId"]["Fn::GetAtt"][0].startswith("StorageDataKey"), lid
            assert "LogGroupName" not in props, lid


def test_the_data_key_admits_cloudwatch_logs_for_this_stacks_log_groups_only(synth: Synth) -> None:
    # Given the data key of the dev stack
    (key,) = [k for lid, k in synth.resources("AWS::KMS::Key").items() if lid.startswith("StorageDataKey")]
    # When its CloudWatch Logs statement is read
    st = _logs_statement(key)
    # Then the regional logs principal gets named actions, scoped by the log group ARN context
    assert st["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert all("*" not in a for a in as_list(st["Action"]))
    arn = st["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    rendered = render(arn)
    assert rendered == f"arn:<AWS::Partition>:logs:us-east-1:123456789012:log-group:{synth.stack.stack_name}-*"
