"""Given a stage with a configured source, When the stack is synthesised, Then a schedule starts the
sync task and the task may write and delete in the raw bucket only."""

from __future__ import annotations

import json


def test_configured_source_gets_a_schedule_running_the_sync_task(synth):
    schedules = synth.resources("AWS::Scheduler::Schedule")

    assert len(schedules) == 1
    props = next(iter(schedules.values()))["Properties"]
    assert props["ScheduleExpression"] == "rate(1 hour)"
    assert "EcsParameters" in props["Target"]


def test_sync_task_role_can_write_the_raw_bucket(synth):
    stack = synth.stack
    raw_arn = json.dumps(stack.resolve(stack.storage.raw.bucket_arn))
    role_id = stack.resolve(stack.connectors.task_role.node.default_child.logical_id)

    policies = [
        p for p in synth.resources("AWS::IAM::Policy").values()
        if any(r.get("Ref") == role_id for r in p["Properties"].get("Roles", []))
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    raw_actions = {a for s in statements if raw_arn[1:-1][:40] in json.dumps(s["Resource"]) for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    assert {"s3:PutObject", "s3:DeleteObject"} <= raw_actions
