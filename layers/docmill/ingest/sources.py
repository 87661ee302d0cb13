"""Find the files behind the paths and S3 URIs a user names, and fetch them for processing."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path
from typing import Any

from docmill.connectors.metadata import read_source_metadata
from docmill.documents.process import SourceDescriptor
from docmill.storage import LocalStore, ObjectInfo, S3Store, is_s3_uri, parse_s3_uri


@dataclass
class SourceRef:
    """One file to ingest: where it is, and how to get its bytes onto local disk."""

    descriptor: SourceDescriptor
    local_path: Path | None = None  # set for local files
    bucket: str | None = None
    key: str | None = None
    mtime: float | None = None
    # Status-change time: ``cp -p`` and ``rsync -t`` can keep size and mtime, never ctime.
    ctime: float | None = None
    error: str | None = None  # set when the input could not even be listed
    error_code: str = "SourceNotFound"

    @property
    def uri(self) -> str:
        return self.descriptor.uri

    @contextmanager
    def materialise(self, s3_client: Any | None = None) -> Iterator[Path]:
        """Yield a local path holding the bytes (downloads S3 objects to a temp file)."""
        if self.local_path is not None:
            yield self.local_path
            return
        store = S3Store(self.bucket or "", "", client=s3_client)
        suffix = Path(self.descriptor.name).suffix
        with tempfile.TemporaryDirectory(prefix="docmill-") as tmp:
            path = Path(tmp) / f"source{suffix}"
            extra = {"VersionId": self.descriptor.version} if _is_version_id(self.descriptor.version) else {}
            body = store.client.get_object(Bucket=self.bucket, Key=self.key, **extra)["Body"]
            with path.open("wb") as fh:
                for block in iter(lambda: body.read(1 << 20), b""):
                    fh.write(block)
            yield path


def _is_version_id(version: str | None) -> bool:
    return bool(version) and not version.startswith(("etag:", "sha256:", "mtime:"))  # type: ignore[union-attr]


def source_id_for(uri: str) -> str:
    """A readable, collision-free folder name for a source: slug of its name + hash of its URI."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60] or "source"
    return f"{slug}-{sha1(uri.encode(), usedforsecurity=False).hexdigest()[:12]}"


def _hidden(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))


def _from_local(info: ObjectInfo) -> SourceRef:
    path = Path(info.uri)
    try:
        ctime: float | None = path.stat().st_ctime
    except OSError:
        ctime = None
    return SourceRef(
        descriptor=SourceDescriptor(
            uri=path.as_uri(), name=path.name, version=None, size=info.size, metadata=read_source_metadata(info)
        ),
        local_path=path,
        mtime=info.last_modified,
        ctime=ctime,
    )


def _from_s3(bucket: str, info: ObjectInfo) -> SourceRef:
    key = info.uri.split(f"s3://{bucket}/", 1)[1]
    version = info.version_id if info.version_id and info.version_id != "null" else None
    if version is None and info.etag:
        version = "etag:" + info.etag.strip('"')
    return SourceRef(
        descriptor=SourceDescriptor(
            uri=f"s3://{bucket}/{key}",
            name=key.rsplit("/", 1)[-1],
            version=version,
            size=info.size,
            metadata=read_source_metadata(info),
        ),
        bucket=bucket,
        key=key,
    )


def describe_s3_object(bucket: str, key: str, *, version_id: str | None = None, s3_client: Any | None = None) -> SourceRef:
    """A source for one S3 object version (what an S3 event names)."""
    store = S3Store(bucket, "", client=s3_client)
    extra = {"VersionId": version_id} if version_id else {}
    head = store.client.head_object(Bucket=bucket, Key=key, **extra)
    info = ObjectInfo(
        key=key,
        uri=f"s3://{bucket}/{key}",
        size=head["ContentLength"],
        etag=head.get("ETag"),
        version_id=head.get("VersionId"),
        metadata=head.get("Metadata") or None,
    )
    return _from_s3(bucket, info)


def discover_sources(inputs: Sequence[str], *, s3_client: Any | None = None) -> list[SourceRef]:
    """Expand files, folders (recursively), S3 objects and S3 prefixes into sources.

    An input that does not exist becomes a source carrying an error, so it is reported as a
    failed file instead of stopping the batch.
    """
    found: dict[str, SourceRef] = {}
    for raw in inputs:
        if is_s3_uri(raw):
            bucket, key = parse_s3_uri(raw)
            store = S3Store(bucket, "", client=s3_client)
            try:
                head = store.head(key) if key and not key.endswith("/") else None
                if head is not None:
                    infos = [head]
                else:
                    prefix = key if not key or key.endswith("/") else key + "/"
                    infos = [i for i in store.list(prefix) if not _hidden(i.key)]
            except Exception as exc:  # noqa: BLE001 - reported per input
                found[raw] = _error_ref(raw, f"cannot list: {exc}")
                continue
            if not infos:
                found[raw] = _error_ref(raw, "not found: no object or prefix with that name")
            for info in infos:
                # Listing omits the version id and user metadata; a HEAD per object brings both.
                if info.metadata is None or info.version_id is None:
                    info = store.head(info.key) or info
                ref = _from_s3(bucket, info)
                found[ref.uri] = ref
            continue
        path = Path(raw).expanduser()
        if path.is_file():
            found_file = LocalStore(path.parent).head(path.name)
            if found_file is None:  # removed since the check above
                continue
            ref = _from_local(found_file)
            found[ref.uri] = ref
        elif path.is_dir():
            for ref in walk_folder(path):
                found[ref.uri] = ref
        else:
            found[raw] = _error_ref(raw, "not found: no such file or folder")
    return list(found.values())


def walk_folder(folder: Path) -> Iterator[SourceRef]:
    """Every file under ``folder``, one bad entry never stopping the walk: a dangling symlink,
    a symlink loop, a symlink to a file outside the folder (not followed), or a name the file
    system cannot stat becomes a source carrying its reason. Symlinked folders are not entered
    (that is how a loop would start); hidden files and folders are left out."""
    root = folder.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(".meta.json"):
                continue
            yield _folder_entry(Path(dirpath) / name, root)


def _folder_entry(path: Path, root: Path) -> SourceRef:
    def refused(reason: str, code: str = "UnsafeFolderEntry") -> SourceRef:
        return SourceRef(descriptor=SourceDescriptor(uri=path.as_uri(), name=path.name), error=reason, error_code=code)

    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except RuntimeError:
            return refused("symlink loop: not followed")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return refused("symlink loop: not followed")
            return refused("broken symlink: its target does not exist")
        if root not in target.parents:
            return refused(f"symlink to a file outside the folder ({target}): not followed")
    try:
        st = path.stat()
    except OSError as exc:
        return refused(f"cannot read the file: {exc.strerror or exc}", "SourceNotFound")
    if not stat.S_ISREG(st.st_mode):
        return refused("not a regular file (device, pipe or socket)")
    metadata = None
    try:
        sidecar = path.with_name(path.name + ".meta.json")
        if sidecar.is_file():
            metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metadata = None  # e.g. the name is too long for a sidecar: the file has none
    info = ObjectInfo(key=path.name, uri=str(path), size=st.st_size, last_modified=st.st_mtime, metadata=metadata)
    return _from_local(info)


def prune_scopes(inputs: Sequence[str], sources: Sequence[SourceRef]) -> list[str]:
    """What ``--prune`` may forget: each input that could be listed, as a URI prefix ending in
    "/" (a folder or S3 prefix) or an exact URI (a file or object). An input that could not be
    listed (a missing folder, an S3 error) prunes nothing: a path typed wrong, or a network
    error, must not empty a collection."""
    failed = {ref.uri for ref in sources if ref.error}
    found = {ref.uri for ref in sources if not ref.error}
    scopes: list[str] = []
    for raw in inputs:
        if raw in failed:
            continue
        if is_s3_uri(raw):
            bucket, key = parse_s3_uri(raw)
            exact = f"s3://{bucket}/{key}"
            scopes.append(exact if key and exact in found else f"s3://{bucket}/{key.rstrip('/') + '/' if key else ''}")
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            scopes.append(path.resolve().as_uri().rstrip("/") + "/")
        elif path.is_file():
            scopes.append(path.resolve().as_uri())
    return scopes


def _error_ref(raw: str, error: str) -> SourceRef:
    return SourceRef(descriptor=SourceDescriptor(uri=raw, name=raw.rsplit("/", 1)[-1]), error=error)
