"""Given documents in S3 (moto), When docmill ingests s3:// inputs into an s3:// output, Then it
reads object versions, writes chunks and the manifest to S3, and skips unchanged objects."""

from __future__ import annotations

import json

from docmill.config import IngestOptions
from docmill.ingest import Ingestor
from docmill.storage import S3Store


def _setup(s3, corpus_docs):
    s3.create_bucket(Bucket="raw")
    s3.put_bucket_versioning(Bucket="raw", VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket="processed")
    s3.put_object(Bucket="raw", Key="acme/docs/memo one.pdf", Body=(corpus_docs / "fake-memo.pdf").read_bytes())
    s3.put_object(
        Bucket="raw",
        Key="acme/docs/notes.txt",
        Body=(corpus_docs / "fake-text.txt").read_bytes(),
        Metadata={"docmill-source-type": "github", "docmill-title": "Notes"},
    )
    s3.put_object(Bucket="raw", Key="acme/docs/empty.txt", Body=b"")


def _ingestor(embedder) -> Ingestor:
    return Ingestor(
        output=S3Store("processed", "out"), collection="acme", options=IngestOptions(workers=1), embedder=embedder
    )


def test_s3_prefix_ingests_into_s3_output_with_versions_and_metadata(s3, corpus_docs, embedder):
    _setup(s3, corpus_docs)

    report = _ingestor(embedder).run(["s3://raw/acme/docs/"])

    by_key = {f.source: f for f in report.files}
    assert by_key["s3://raw/acme/docs/memo one.pdf"].status == "ok"
    assert by_key["s3://raw/acme/docs/empty.txt"].status == "failed"
    notes = by_key["s3://raw/acme/docs/notes.txt"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="processed", Prefix="out/")["Contents"]]
    chunk_key = next(k for k in keys if "notes.txt" in k and k.endswith("chunks.jsonl"))
    first = json.loads(s3.get_object(Bucket="processed", Key=chunk_key)["Body"].read().decode().splitlines()[0])
    version = s3.head_object(Bucket="raw", Key="acme/docs/notes.txt")["VersionId"]
    assert first["source_uri"] == "s3://raw/acme/docs/notes.txt"
    assert first["source_version"] == version == notes.version
    assert first["metadata"] == {"source_type": "github", "title": "Notes"}
    assert any(k.startswith(f"out/collections/acme/runs/{report.run_id}") for k in keys)


def test_unchanged_s3_objects_are_skipped_and_new_versions_reprocessed(s3, corpus_docs, embedder):
    _setup(s3, corpus_docs)
    _ingestor(embedder).run(["s3://raw/acme/docs/notes.txt", "s3://raw/acme/docs/memo one.pdf"])
    s3.put_object(Bucket="raw", Key="acme/docs/notes.txt", Body=b"A new version of the notes about solar panels.\n")

    again = _ingestor(embedder).run(["s3://raw/acme/docs/notes.txt", "s3://raw/acme/docs/memo one.pdf"])

    statuses = {f.source.rsplit("/", 1)[-1]: f.status for f in again.files}
    assert statuses == {"notes.txt": "ok", "memo one.pdf": "skipped"}


def test_missing_s3_key_is_reported_not_raised(s3, corpus_docs, embedder):
    _setup(s3, corpus_docs)

    report = _ingestor(embedder).run(["s3://raw/acme/nothing-here.pdf"])

    assert report.files[0].status == "failed"
    assert report.files[0].reason.startswith("not found")
