"""Monitoring construct: dashboard and the alarms an operator acts on."""

from __future__ import annotations

from tests.infra.conftest import Synth


def _alarms(synth: Synth) -> dict[str, dict]:
    return {
        lid.rstrip("0123456789ABCDEF").removeprefix("Monitoring"): r["Properties"]
        for lid, r in synth.resources("AWS::CloudWatch::Alarm").items()
    }


def test_alarms_cover_dlq_failed_files_workflows_and_the_endpoint(synth: Synth) -> None:
    alarms = _alarms(synth)
    assert set(alarms) == {
        "DlqDepth",
        "FilesFailed",
        "GenerationFailed",
        "GenerationTimedOut",
        "Endpoint5xx",
        "EndpointLatency",
        "LargeFileFailed",
    }
    assert alarms["DlqDepth"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarms["DlqDepth"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0].startswith("StorageEventsDlq")
    # Failed files are summed over route (refused types) and processing.
    failed = {
        m["Id"]: m["MetricStat"]["Metric"] for m in alarms["FilesFailed"]["Metrics"] if "MetricStat" in m
    }
    assert {(m["Namespace"], m["MetricName"]) for m in failed.values()} == {("docmill", "FilesFailed")}
    assert {m["Dimensions"][0]["Value"] for m in failed.values()} == {"process_document", "route"}
    assert alarms["GenerationFailed"]["MetricName"] == "ExecutionsFailed"
    assert alarms["Endpoint5xx"]["MetricName"] == "Invocation5XXErrors"
    dims = {d["Name"]: d["Value"] for d in alarms["Endpoint5xx"]["Dimensions"]}
    assert dims == {"EndpointName": "docmill-dev-llm", "VariantName": "AllTraffic"}
    # ModelLatency is in microseconds: 30 s p90 threshold.
    assert alarms["EndpointLatency"]["ExtendedStatistic"] == "p90"
    assert alarms["EndpointLatency"]["Threshold"] == 30_000_000


def test_alarms_notify_an_encrypted_topic(synth: Synth) -> None:
    ((topic_lid, topic),) = synth.resources("AWS::SNS::Topic").items()
    assert topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("MonitoringTopicKey")
    for name, alarm in _alarms(synth).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_lid}], name


def test_dashboard_exists(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "docmill-dev-pipeline"
