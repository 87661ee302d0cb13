"""Run the ECS task of the local emulator (moto) as the in-process entry point.

moto's ``RunTask`` records a task but runs no container (there is no Docker here). For the task
definition registered by ``docmill dev``, ``LocalTasks`` patches moto's run_task to also run
the task's entry point - ``docmill.runtime.ecs_task.main`` with the container's environment
overrides, exactly what the Fargate container receives - on the caller's executor, and marks the
task STOPPED with the exit code when it ends. Other task definitions keep moto's behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

log = logging.getLogger(__name__)

Runner = Callable[[Mapping[str, str]], int]


class LocalTasks:
    def __init__(self, *, executor: Executor | None = None) -> None:
        self._runners: dict[str, tuple[str, Runner]] = {}  # family -> (container name, runner)
        self._executor = executor
        self._original: Any = None
        self.runs: list[dict[str, str]] = []

    def register(self, family: str, container: str, runner: Runner) -> None:
        self._runners[family] = (container, runner)

    def install(self) -> LocalTasks:
        from moto.ecs.models import EC2ContainerServiceBackend

        if self._original is not None:
            return self
        original = EC2ContainerServiceBackend.run_task
        registry = self

        def run_task(backend: Any, *args: Any, **kwargs: Any) -> Any:
            tasks = original(backend, *args, **kwargs)
            overrides = kwargs.get("overrides") if "overrides" in kwargs else (args[3] if len(args) > 3 else None)
            for task in tasks:
                registry._start(task, overrides or {})
            return tasks

        self._original = original
        EC2ContainerServiceBackend.run_task = run_task
        return self

    def uninstall(self) -> None:
        from moto.ecs.models import EC2ContainerServiceBackend

        if self._original is not None:
            EC2ContainerServiceBackend.run_task = self._original
            self._original = None

    def _start(self, task: Any, overrides: Mapping[str, Any]) -> None:
        family = str(task.task_definition_arn).rsplit("/", 1)[-1].split(":", 1)[0]
        bound = self._runners.get(family)
        if bound is None:
            return
        container, runner = bound
        env: dict[str, str] = {}
        for override in overrides.get("containerOverrides", []) or []:
            if override.get("name") == container:
                env.update({e["name"]: e["value"] for e in override.get("environment", []) or []})
        self.runs.append(env)

        def run() -> None:
            try:
                code = runner(env)
            except Exception:
                log.exception("local ECS task failed")
                code = 1
            task.last_status = task.desired_status = "STOPPED"
            task.stopped_reason = f"Essential container in task exited (exit code {code})"

        if self._executor is not None:
            self._executor.submit(run)
        else:
            run()
