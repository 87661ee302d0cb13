#!/usr/bin/env python3
"""CDK entry point (`npx cdk synth|deploy`, or `python app.py`): the stage comes from context
(docmill:stage). cdk.json's context is the base either way, so both synthesise the same template;
the CLI's own context (`-c`, cdk.context.json) overrides it."""

from infra.app import build_app, cdk_json_context

app, _stack = build_app(cdk_json_context())
app.synth()
