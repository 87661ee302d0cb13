"""Fixtures shared by every test group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub, and each test process gets one torch thread per core at most.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER") and int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) >= len(
    os.sched_getaffinity(0)
):
    # A worker per core already: a second OpenMP/BLAS thread in each (torch, ONNX Runtime, and
    # the subprocesses they start) only oversubscribes the cores, and spinning OpenMP threads
    # waste what the other worker needs.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DOCMILL_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
DOCS = CORPUS / "docs"
BAD = CORPUS / "bad"
EVENTS = Path(__file__).resolve().parent / "events"


@pytest.fixture(scope="session")
def corpus_docs() -> Path:
    if not DOCS.is_dir():
        pytest.skip(f"corpus not found at {DOCS} (set DOCMILL_SHARED)")
    return DOCS


@pytest.fixture(scope="session")
def corpus_bad() -> Path:
    if not BAD.is_dir():
        pytest.skip(f"corpus not found at {BAD} (set DOCMILL_SHARED)")
    return BAD


@pytest.fixture(scope="session")
def embedder():
    """One loaded MiniLM per test session, on the default runtime (CTranslate2 int8; the model is converted
    into the model cache on first use): loading costs seconds, reuse costs nothing."""
    from docmill.config import Settings
    from docmill.embeddings import embedder_for

    return embedder_for(Settings())


@pytest.fixture(scope="session")
def torch_embedder():
    """The PyTorch MiniLM, the reference the ONNX runtime is held to."""
    from docmill.embeddings.local import LocalEmbedder

    return LocalEmbedder.shared()


@pytest.fixture
def aws_env(monkeypatch):
    """Credentials and region for moto; no real AWS account is ever reached."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from docmill import aws

    aws.reset_clients()
    yield
    aws.reset_clients()


@pytest.fixture
def s3(aws_env):
    """A moto-backed S3 client, injected into docmill's client factory."""
    import boto3
    from moto import mock_aws

    from docmill import aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        aws.set_client("s3", client)
        yield client



@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    """Keep each module whose tests share a module- or class-scoped fixture on one xdist worker.

    Such a fixture (an ingested corpus, a loaded model, a running server) is built once per
    worker that runs any test of its module; spread test by test over two workers it would be
    built twice. ``xdist_group`` is honoured under ``--dist loadgroup`` (scripts/test.sh); plain
    ``load`` ignores it.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = any(
            d.scope in ("module", "class", "package")
            for defs in info.name2fixturedefs.values()
            for d in defs
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    if getattr(config.option, "loadgroup", False):  # set on xdist workers only
        _suffix_groups(items)


def _suffix_groups(items):
    """What xdist's own hook does on a worker under ``--dist loadgroup``: the group becomes a
    node-id suffix the scheduler reads. xdist 3.8 writes ``item._nodeid``, which pytest 9 no
    longer reads (the id lives in ``item._id``), so without this every group is ignored."""
    from _pytest.nodeid import coerce_node_id

    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")})
        if groups and "@" not in item.nodeid.rsplit("]", 1)[-1]:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(groups)}")
