"""The code every compute resource runs: the library as a Lambda layer and the processing image.

Both are built without Docker on the synth machine:
- the layer is bundled locally (``pip install --platform manylinux2014_x86_64`` of the library's
  light dependencies into ``python/`` plus a copy of ``layers/docmill``); Docker is only the
  fallback when local bundling is impossible;
- the image is a ``DockerImageAsset``: ``cdk synth`` only fingerprints the build context, the
  image is built by ``cdk deploy`` (or a CI runner with Docker).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, IgnoreMode, ILocalBundling
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import paths

logger = logging.getLogger(__name__)

# Provided by the Lambda Python runtime; keeping them out keeps the layer small.
_RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath"}


# Optional dependency groups (pyproject [project.optional-dependencies]) that go into each artefact:
# the layer (light zip functions: route, plan) has the base dependencies only; the image has
# everything heavy (parsing, embedding, generation, dataset writing, source connectors, the API).
LAYER_EXTRAS: tuple[str, ...] = ()
IMAGE_EXTRAS = ("processing", "generation", "connectors", "api")


def _project(pyproject: Path) -> dict:
    return tomllib.loads(pyproject.read_text())["project"]


def image_extras(pyproject: Path = paths.REPO_ROOT / "pyproject.toml") -> str:
    """The ``DOCMILL_EXTRAS`` build argument: the image extras this pyproject defines."""
    defined = _project(pyproject).get("optional-dependencies", {})
    return ",".join(extra for extra in IMAGE_EXTRAS if extra in defined)


def layer_requirements(pyproject: Path = paths.REPO_ROOT / "pyproject.toml") -> list[str]:
    """The library's base (+ LAYER_EXTRAS) dependencies minus what the Lambda runtime already has."""
    project = _project(pyproject)
    deps = list(project["dependencies"])
    for extra in LAYER_EXTRAS:
        deps += project.get("optional-dependencies", {}).get(extra, [])
    out = []
    for dep in deps:
        name = dep.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        if name.strip().lower() not in _RUNTIME_PROVIDED:
            out.append(dep)
    return out


@jsii.implements(ILocalBundling)
class LocalLayerBundler:
    """Lays out ``python/docmill`` + manylinux wheels of its dependencies in the asset dir."""

    def try_bundle(self, output_dir: str, *_options: object, **_kwargs: object) -> bool:
        target = Path(output_dir) / "python"
        target.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "--platform",
            "manylinux2014_x86_64",
            "--implementation",
            "cp",
            "--python-version",
            "3.11",
            "--only-binary=:all:",
            "--upgrade",
            *layer_requirements(),
        ]
        try:
            subprocess.run(cmd, check=True)  # noqa: S603 - a fixed argv, no shell
        except (OSError, subprocess.CalledProcessError) as exc:
            logger.warning("docmill layer: local bundling failed (%s); falling back to Docker", exc)
            return False
        shutil.copytree(
            paths.LAYERS_DIR / "docmill",
            target / "docmill",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        return True


def dockerignore_patterns() -> list[str]:
    lines = paths.DOCKERIGNORE.read_text().splitlines() if paths.DOCKERIGNORE.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


class RuntimeCode(Construct):
    """Attributes: ``layer`` (library LayerVersion), ``image`` (processing DockerImageAsset)."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.layer = lambda_.LayerVersion(
            self,
            "LibraryLayer",
            description="docmill library (layers/docmill) and its light dependencies",
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
            compatible_architectures=[lambda_.Architecture.X86_64],
            code=lambda_.Code.from_asset(
                str(paths.LAYERS_DIR),
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=BundlingOptions(
                    local=LocalLayerBundler(),
                    # Fallback for machines where local pip cannot target manylinux (needs Docker).
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.11"),
                    command=[
                        "bash",
                        "-c",
                        "pip install -t /asset-output/python "
                        + " ".join(f"'{r}'" for r in layer_requirements())
                        + " && cp -r /asset-input/docmill /asset-output/python/",
                    ],
                ),
            ),
        )
        # One image for the container Lambdas and the ECS task; cdk synth only fingerprints it.
        self.image = ecr_assets.DockerImageAsset(
            self,
            "ProcessingImage",
            directory=str(paths.REPO_ROOT),
            file=paths.DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,
            build_args={"DOCMILL_EXTRAS": image_extras()},
            # The build context is the repo root: never fingerprint cdk.out or node_modules.
            exclude=dockerignore_patterns() or ["cdk.out", "node_modules", ".git", ".venv"],
            ignore_mode=IgnoreMode.DOCKER,
        )
