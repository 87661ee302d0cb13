"""The deployed entry points under kill -9: the ECS task (``python -m docmill.runtime.ecs_task``)
and the process_document Lambda's library call (``process_object`` -> ``Ingestor.ingest_one``),
each a process of its own reading the raw bucket and writing the processed bucket of a moto
server, indexing into an embedded LanceDB store. Each is killed with SIGKILL at every step of
one object's ingest (``tests/reliability/crash_hooks.py``), then the same command runs again.

What must hold: a killed run never leaves the new version committed (``source.json`` is the
commit marker and comes last); the re-run completes it; and then the index holds exactly the
chunks that the processed bucket's ``chunks.jsonl`` lists for the source: no duplicate chunk
id, none missing, none of an earlier version left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from docmill.ingest.sources import source_id_for
from docmill.names import collection_prefix
from tests.reliability.crash_hooks import MARKER_VARIABLE, PHASE_VARIABLE

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process-group kill semantics")

REPO = Path(__file__).resolve().parents[2]
RAW, PROCESSED = "crash-raw", "crash-processed"
TENANT, COLLECTION = "acme", "manuals"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Moto:
    endpoint: str
    s3: Any


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    """moto's standalone server on a free local port, with a versioned raw bucket (as deployed)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto server did not start on port {port}")
            time.sleep(0.1)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for bucket in (RAW, PROCESSED):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        yield Moto(endpoint, s3)
    finally:
        server.kill()
        server.wait(10)


def _pdf(version: int) -> bytes:
    """A text PDF whose page count and text change with ``version`` (so do its chunk ids)."""
    import io

    import pikepdf

    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    )
    for page in range(2 + version % 2):
        lines = [f"Section {page + 1}: maintenance of pump model {version}-{page}"] + [
            f"Step {n} of revision {version}: check valve {page}-{n} and record pressure reading {n * 7 + version}."
            for n in range(24)
        ]
        body = "BT /F1 10 Tf 60 760 Td 13 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
        pdf.pages.append(
            pikepdf.Page(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Page,
                    MediaBox=[0, 0, 612, 792],
                    Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
                    Contents=pdf.make_stream(body.encode("latin-1")),
                )
            )
        )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@dataclass
class Entry:
    """One entry point over one raw object, with its own DOCMILL_HOME (its LanceDB index)."""

    name: str
    moto: Moto
    home: Path
    key: str
    hooks: Path

    @property
    def uri(self) -> str:
        return f"s3://{RAW}/{self.key}"

    @property
    def source_dir(self) -> str:
        return f"{collection_prefix(COLLECTION, TENANT)}/sources/{source_id_for(self.uri)}"

    def upload(self, version: int) -> str:
        return str(self.moto.s3.put_object(Bucket=RAW, Key=self.key, Body=_pdf(version))["VersionId"])

    def environment(self, pause_at: str | None, marker: Path) -> dict[str, str]:
        # The ECS task's contract (ProcessEnvironment): exactly these DOCMILL_/POWERTOOLS_ names.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCMILL_", "POWERTOOLS_", "AWS_"))}
        env.update(CREDENTIALS)
        env.update(
            {
                "AWS_ENDPOINT_URL": self.moto.endpoint,
                "POWERTOOLS_SERVICE_NAME": "process_document",
                "POWERTOOLS_METRICS_NAMESPACE": "docmill",
                "DOCMILL_HOME": str(self.home),
                "DOCMILL_STORE": "local",
                "DOCMILL_AWS__RAW_BUCKET": RAW,
                "DOCMILL_AWS__PROCESSED_BUCKET": PROCESSED,
                "DOCMILL_AWS__DATASETS_BUCKET": "crash-datasets",
                "DOCMILL_AWS__WORK_PREFIX": "_work/",
                "DOCMILL_LLM__SPEC": "local",
                "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": os.pathsep.join([str(self.hooks), *(str(REPO / p) for p in ("layers", "devtools", "."))]),
            }
        )
        if pause_at:
            env[PHASE_VARIABLE], env[MARKER_VARIABLE] = pause_at, str(marker)
        return env

    def command(self, version_id: str) -> list[str]:
        if self.name == "ecs":
            return [sys.executable, "-m", "docmill.runtime.ecs_task", "--bucket", RAW, "--key", self.key]
        event = {"bucket": RAW, "key": self.key, "version_id": version_id, "event_name": "ObjectCreated:Put"}
        return [sys.executable, "-m", "tests.reliability.process_driver", json.dumps(event)]

    def start(self, version_id: str, pause_at: str | None, marker: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command(version_id),
            cwd=REPO,
            env=self.environment(pause_at, marker),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def kill_at(self, version_id: str, phase: str) -> None:
        marker = self.home.parent / f"{self.name}-{phase}.reached"
        proc = self.start(version_id, phase, marker)
        try:
            deadline = time.monotonic() + 90
            while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            reached = marker.exists()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert reached, f"{self.name} never reached {phase}: rc={proc.returncode}\n{stderr.decode()[-3000:]}"
        assert proc.returncode == -signal.SIGKILL

    def run(self, version_id: str) -> dict[str, Any]:
        proc = self.start(version_id, None, self.home.parent / "unused")
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{self.name}: rc={proc.returncode}\n{stderr.decode()[-3000:]}"
        return json.loads(stdout.decode().strip().splitlines()[-1])

    # -- what the run left --------------------------------------------------------------------

    def state(self) -> dict[str, Any] | None:
        try:
            body = self.moto.s3.get_object(Bucket=PROCESSED, Key=f"{self.source_dir}/source.json")["Body"].read()
        except self.moto.s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))

    def listed_chunks(self) -> list[dict[str, Any]]:
        body = self.moto.s3.get_object(Bucket=PROCESSED, Key=f"{self.source_dir}/chunks.jsonl")["Body"].read()
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def indexed_chunk_ids(self) -> list[str]:
        """Every row of the LanceDB table for this source, read raw (duplicates included)."""
        import lancedb

        db = lancedb.connect(str(self.home / "vectors"))
        if "chunks" not in db.list_tables().tables:
            return []
        rows = db.open_table("chunks").to_arrow().select(["chunk_id", "source_uri", "tenant", "collection"]).to_pylist()
        return [
            r["chunk_id"]
            for r in rows
            if (r["source_uri"], r["tenant"], r["collection"]) == (self.uri, TENANT, COLLECTION)
        ]


def _assert_not_committed(entry: Entry, committed: str | None, phase: str) -> None:
    """After a kill, source.json still names the version committed before (none on a first ingest)."""
    state = entry.state()
    if committed is None:
        assert state is None, f"{entry.name} killed at {phase}: source.json written before the run completed"
    else:
        assert state is not None and state["observed_version"] == committed, (
            f"{entry.name} killed at {phase}: source.json now names {state and state['observed_version']}, "
            f"the version whose ingest was killed"
        )


def _assert_converged(entry: Entry, version_id: str, outcome: dict[str, Any]) -> dict[str, int]:
    """The re-run committed ``version_id``; index == chunks.jsonl; returns the counts."""
    assert outcome["status"] == "ok", outcome  # "skipped" would mean a half-done run was taken for complete
    state = entry.state()
    assert state is not None and state["observed_version"] == version_id
    listed = entry.listed_chunks()
    listed_ids = [c["chunk_id"] for c in listed]
    assert len(set(listed_ids)) == len(listed_ids) == state["chunks"] == outcome["chunks"] > 0
    assert {c["source_version"] for c in listed} == {state["version"]}
    indexed = entry.indexed_chunk_ids()
    counts = {
        "chunks": len(listed_ids),
        "duplicates": sum(n - 1 for n in Counter(indexed).values()),
        "missing": len(set(listed_ids) - set(indexed)),
        "stale": len(set(indexed) - set(listed_ids)),
    }
    assert counts["duplicates"] == counts["missing"] == counts["stale"] == 0, counts
    return counts


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    folder = tmp_path / "hooks"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "from tests.reliability.crash_hooks import install_from_env\n\ninstall_from_env()\n"
    )
    return folder


# Per entry point, one version of the object after another; each version's runs are killed at
# the phases named, in turn (each killed run starting from what the one before left), then the
# same command runs to completion. Both entry points make the same library call after their
# entry, so they share the phases out (every run starts an interpreter that imports
# Unstructured and LanceDB, seconds each): together they cover every phase, on a first ingest
# and on the replacement of a committed version.
PLANS: dict[str, tuple[tuple[str, ...], ...]] = {
    "ecs": (("partition", "commit"), ("write", "index-stale")),
    "lambda": (("embed", "index"), ("commit",)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PLANS))
def test_entry_point_killed_at_each_step_then_rerun_indexes_exactly_the_listed_chunks(
    name: str, moto: Moto, hooks: Path, tmp_path: Path
) -> None:
    entry = Entry(name, moto, tmp_path / "home", f"{TENANT}/{COLLECTION}/{name}/pump-manual.pdf", hooks)
    committed: str | None = None
    report = []
    for version, phases in enumerate(PLANS[name], start=1):
        # Given a new version of the object in the raw bucket and the entry point killed at each phase
        version_id = entry.upload(version)
        for phase in phases:
            entry.kill_at(version_id, phase)
            _assert_not_committed(entry, committed, phase)

        # When the same command runs again to completion
        clock = time.monotonic()
        outcome = entry.run(version_id)
        rerun_s = time.monotonic() - clock

        # Then the new version is committed and the index holds exactly its listed chunks
        report.append((" then ".join(phases), _assert_converged(entry, version_id, outcome), round(rerun_s, 1)))
        committed = version_id
    print(f"{name}: " + "; ".join(f"killed at {p}, re-run in {s} s: {c}" for p, c, s in report))
