"""The metadata every synced document carries, defined once.

A connector lands a document in the raw bucket (or a local folder) with these keys as S3 user
metadata (``x-amz-meta-docmill-*``) or, for a local destination, in the ``<file>.meta.json``
sidecar that ``LocalStore`` writes. Ingestion reads them back with ``read_source_metadata``
into ``ChunkRecord.metadata``, and dataset provenance reuses the same names.

S3 user metadata travels in HTTP headers, so values must be US-ASCII and the whole set must
stay under 2 KB. Values that are not plain ASCII (or contain ``%``) are percent-encoded on the
way in and decoded on the way out; plain values stay readable as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

PREFIX = "docmill-"
S3_HEADER_PREFIX = "x-amz-meta-"

# Stored keys (S3 lower-cases user metadata keys, so they are lower case here too).
SOURCE_TYPE = "docmill-source-type"  # local | s3 | github | gdrive | mongodb | slack | wikipedia | elasticsearch
SOURCE_NAME = "docmill-source-name"  # the configured source's name (its sync state file)
SOURCE_ID = "docmill-source-id"  # stable id of the document at the source
SOURCE_URL = "docmill-source-url"  # where a person can open it
TITLE = "docmill-title"
AUTHOR = "docmill-author"
MODIFIED = "docmill-modified"  # ISO 8601, UTC
VERSION = "docmill-source-version"  # etag / sha / revision id / modification marker
SHA256 = "docmill-sha256"  # of the landed bytes
SYNCED_AT = "docmill-synced-at"  # ISO 8601, UTC

ALL_KEYS = (SOURCE_TYPE, SOURCE_NAME, SOURCE_ID, SOURCE_URL, TITLE, AUTHOR, MODIFIED, VERSION, SHA256, SYNCED_AT)

# Where sync state lives under a destination; ingestion and the route handler skip it.
SYNC_STATE_DIR = ".docmill-sync"

# Per-value caps keep the whole set well under S3's 2 KB user-metadata limit.
_MAX_VALUE = {TITLE: 300, AUTHOR: 200, SOURCE_URL: 600, SOURCE_ID: 400}
_DEFAULT_MAX = 200


def field_name(key: str) -> str:
    """``docmill-source-type`` -> ``source_type`` (the name used in ChunkRecord.metadata)."""
    name = key.lower()
    if name.startswith(S3_HEADER_PREFIX):
        name = name[len(S3_HEADER_PREFIX) :]
    if name.startswith(PREFIX):
        name = name[len(PREFIX) :]
    return name.replace("-", "_")


def _encode(value: str) -> str:
    if value.isascii() and "%" not in value and value.isprintable():
        return value
    return quote(value, safe=" !#$&'()*+,/:;=?@[]~")


def encode_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """Metadata ready for ``ObjectStore.write_bytes(..., metadata=...)``: ASCII, capped, no Nones."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        text = str(value)
        cap = _MAX_VALUE.get(key, _DEFAULT_MAX)
        if len(text) > cap:
            text = text[: cap - 1] + "…"
        out[key] = _encode(text)
    return out


def is_sync_internal(key: str) -> bool:
    """True for sync bookkeeping (state files) that must never be ingested as a document."""
    return SYNC_STATE_DIR in key.replace("\\", "/").split("/")


def read_source_metadata(object_info: Any) -> dict[str, str]:
    """The connector metadata of a landed object, keyed by field name (``source_type``, ``title`` ...).

    Accepts a ``docmill.storage.ObjectInfo`` (its ``metadata``: S3 user metadata from
    ``head``, or the local sidecar), a boto3 ``head_object``/``get_object`` response (its
    ``Metadata``), or a plain mapping of metadata keys (with or without ``x-amz-meta-``).
    Keys that are not docmill's are ignored; an object without any gives ``{}``.
    """
    if object_info is None:
        return {}
    if isinstance(object_info, Mapping):
        raw = object_info.get("Metadata", object_info)
    else:
        raw = getattr(object_info, "metadata", None)
    if not raw:
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        lowered = str(key).lower()
        if lowered.startswith(S3_HEADER_PREFIX):
            lowered = lowered[len(S3_HEADER_PREFIX) :]
        if not lowered.startswith(PREFIX) or value is None:
            continue
        out[field_name(lowered)] = unquote(str(value))
    return out
