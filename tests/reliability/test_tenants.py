"""Names and tenants: unsafe collection/tenant names are refused, and two tenants ingesting the
same path never see, skip or delete each other's data (state, outputs, index, failures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.config import IngestOptions
from docmill.errors import ConfigurationError
from docmill.generation.pipeline import collection_chunks
from docmill.ingest import Ingestor
from docmill.names import collection_prefix, validate_name
from docmill.runtime.keys import placement_for_key
from docmill.runtime.process import failure_key
from docmill.runtime.workflow import processed_chunks
from docmill.storage import LocalStore
from docmill.vectorstores import SearchFilter
from tests.support.generation_doubles import HashingEmbedder
from tests.support.vector_fixtures import opensearch_server, store  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
BAD_NAMES = ["../x", "a/b", ".", "..", "", "x" * 65, "a..b", "-lead", "name with space", "nul\x00", "ünï", "c\\d"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_collection_and_tenant_names_are_refused_with_a_clear_error(name, tmp_path):
    for kind in ("collection", "tenant"):
        with pytest.raises(ConfigurationError, match=kind):
            validate_name(kind, name)
    with pytest.raises(ConfigurationError):
        Ingestor(output=LocalStore(tmp_path), collection=name)
    with pytest.raises(ConfigurationError):
        Ingestor(output=LocalStore(tmp_path), collection="ok", tenant=name)
    assert not any(tmp_path.iterdir())  # nothing written anywhere


def test_safe_names_pass_and_tenants_get_their_own_prefix():
    assert validate_name("collection", "hand-book_v1.2") == "hand-book_v1.2"
    assert collection_prefix("c") == collection_prefix("c", "default") == "collections/c"
    assert collection_prefix("c", "alpha") == "tenants/alpha/collections/c"
    # An S3 key with unsafe segments falls back to the defaults, never to a path of its own
    assert placement_for_key("../x/file.pdf", default_tenant="d", default_collection="c").collection == "c"


def test_the_cli_refuses_a_traversal_collection_name_before_writing(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'layers'}{os.pathsep}{REPO}"}
    (tmp_path / "doc.txt").write_text("hello")
    proc = subprocess.run(
        [sys.executable, "-m", "docmill", "ingest", str(tmp_path / "doc.txt"), "--collection", "../vectors",
         "--home", str(tmp_path / "home"), "--store", "none"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "invalid collection name '../vectors'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "vectors").exists() and not list((tmp_path / "home").rglob("*.json"))


def _ingestor(home: Path, store, tenant: str) -> Ingestor:
    return Ingestor(output=LocalStore(home), collection="shared", tenant=tenant, options=IngestOptions(workers=1),
                    embedder=HashingEmbedder(), vector_store=store)


def _ids(store, tenant: str) -> set[str]:
    return {c.chunk_id for c in store.iter_chunks("shared", tenant=tenant)}


def _texts(store, tenant: str) -> str:
    return " ".join(c.text for c in store.iter_chunks("shared", tenant=tenant))


def test_two_tenants_on_the_same_path_never_see_skip_or_delete_each_others_data(store, tmp_path):
    src, home = tmp_path / "src", tmp_path / "home"
    src.mkdir()
    doc = src / "policy.txt"
    doc.write_text("Alpha era policy. Leave is 20 days a year.\n\nClaims within 30 days.\n")
    other = src / "other.txt"
    other.write_text("A second document about parking permits.\n")
    uri = doc.resolve().as_uri()

    # Given alpha ingested the folder
    a1 = _ingestor(home, store, "alpha").run([str(src)])
    assert [f.status for f in a1.files] == ["ok", "ok"]
    # When beta ingests the same path, Then it is processed for beta, not "skipped"
    b1 = _ingestor(home, store, "beta").run([str(src)])
    assert [f.status for f in b1.files] == ["ok", "ok"]
    alpha_ids, beta_ids = _ids(store, "alpha"), _ids(store, "beta")
    assert alpha_ids and beta_ids

    # When the file changes and alpha re-ingests, Then beta still has its own (old) chunks
    doc.write_text("Changed policy. Leave is 25 days a year.\n")
    a2 = _ingestor(home, store, "alpha").run([str(src)])
    assert {f.source: f.status for f in a2.files}[uri] == "ok"
    assert "25 days" in _texts(store, "alpha") and "20 days" not in _texts(store, "alpha")
    assert _ids(store, "beta") == beta_ids and "20 days" in _texts(store, "beta")

    # When beta forgets the source, Then alpha's chunks of the same path stay
    alpha_now = _ids(store, "alpha")
    _ingestor(home, store, "beta").delete_source(uri)
    assert _ids(store, "alpha") == alpha_now
    assert "Alpha era" not in _texts(store, "beta") and "parking" in _texts(store, "beta")

    # Outputs and state: each tenant's under its own prefix, no file shared
    alpha_files = {p.relative_to(home) for p in (home / "tenants/alpha").rglob("*") if p.is_file()}
    beta_files = {p.relative_to(home) for p in (home / "tenants/beta").rglob("*") if p.is_file()}
    assert alpha_files and beta_files and not (home / "collections").exists()
    for path in alpha_files:
        if path.name == "chunks.jsonl":
            assert {json.loads(x)["tenant"] for x in (home / path).read_text().splitlines()} == {"alpha"}

    # Every read path filters by tenant
    out = LocalStore(home)
    for tenant in ("alpha", "beta"):
        files = list(collection_chunks(None, "shared", tenant=tenant, home=home))
        assert files and {c.tenant for c in files} == {tenant}
        assert {c.tenant for c in processed_chunks(out, "shared", tenant)} == {tenant}
        hits = store.search(HashingEmbedder().embed_query("leave days policy"), k=10,
                            filters=SearchFilter(collection="shared", tenant=tenant))
        assert hits and {h.tenant for h in hits} == {tenant}
    assert failure_key("shared", uri, "alpha") != failure_key("shared", uri, "beta")
