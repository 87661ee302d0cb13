"""Repository locations the CDK app builds assets from, and the agreed runtime entry points."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYERS_DIR = REPO_ROOT / "layers"
FUNCTIONS_DIR = REPO_ROOT / "functions"
CONTAINERS_DIR = REPO_ROOT / "containers"
DOCKERFILE = "containers/Dockerfile"  # relative to the image build context (the repo root)
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
# The web app's static build (scripts/install.sh runs `expo export` there).
WEB_BUILD_DIR = REPO_ROOT / "frontend" / "dist"

# Handler locations agreed with the runtime issue (#5). Zip functions: (asset dir, handler).
ROUTE_CODE = FUNCTIONS_DIR / "route"
ROUTE_HANDLER = "handler.handler"
GENERATION_CODE = FUNCTIONS_DIR / "generation"
PLAN_HANDLER = "plan.handler"
CREATE_INDEX_CODE = FUNCTIONS_DIR / "create_index"
CREATE_INDEX_HANDLER = "handler.handler"
FINETUNE_CODE = FUNCTIONS_DIR / "finetune"
FINETUNE_EVALUATE_HANDLER = "evaluate.handler"

# Container image entry points (module paths inside the image, WORKDIR = LAMBDA_TASK_ROOT).
PROCESS_DOCUMENT_CMD = "functions.process_document.handler.handler"
GENERATE_BATCH_CMD = "functions.generation.generate_batch.handler"
ASSEMBLE_CMD = "functions.generation.assemble.handler"
ECS_TASK_MODULE = "functions.process_document.ecs_task"
CHAT_API_CMD = "functions.chat_api.handler.handler"

# Custom metrics the handlers emit (Powertools EMF); the monitoring construct alarms on them.
METRICS_NAMESPACE = "docmill"
FILES_FAILED_METRIC = "FilesFailed"
