"""Development tooling for docmill, outside what the Lambda layer and the container image ship.

- ``dev``: ``docmill dev``, a local AWS (moto) with the pipeline's handlers bound in-process;
- ``local_lambda`` / ``local_ecs``: in-process bindings of moto's Lambda invoke and ECS run_task;
- ``moto_gaps``: what moto's S3 does not emit and the stack relies on;
- ``scripted``: ``ScriptedLLM``, a deterministic LLM double for tests and demos;
- ``generation.asl.json``: the stack's generation state machine, exported by ``infra.asl_export``.

The library (``docmill``) never imports this package, except the ``docmill dev`` command.
"""
