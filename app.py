#!/usr/bin/env python3
"""CDK entry point (`npx cdk synth|deploy`): the stage comes from cdk.json context (docmill:stage)."""

from infra.app import build_app

app, _stack = build_app()
app.synth()
