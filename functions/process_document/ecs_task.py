"""ECS Fargate task entry (``python3 -m functions.process_document.ecs_task``): the same
one-object ingest as the container Lambda; see ``docmill.runtime.ecs_task``."""

from __future__ import annotations

from docmill.runtime.ecs_task import main

if __name__ == "__main__":
    raise SystemExit(main())
