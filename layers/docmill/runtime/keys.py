"""Where an object of the raw bucket belongs, and which keys are not documents at all.

Key convention of the raw bucket (documented in the README):

    <tenant>/<collection>/<any/path/file.ext>  -> tenant <tenant>, collection <collection>
    <tenant>/<file.ext>                        -> tenant <tenant>, collection <tenant>
    <file.ext>                                 -> the configured default tenant and collection

Tenant and collection names are path segments that pass ``docmill.names.validate_name``
(letters, digits, ``.``, ``_`` and ``-``, at most 64); a key whose segments do not goes to the
defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from docmill.connectors.metadata import is_sync_internal
from docmill.documents.filetypes import ARCHIVES, SUPPORTED, extension_of
from docmill.names import is_valid_name


@dataclass(frozen=True)
class Placement:
    tenant: str
    collection: str


def placement_for_key(key: str, *, default_tenant: str, default_collection: str) -> Placement:
    parts = [p for p in key.split("/") if p]
    if len(parts) >= 3 and is_valid_name(parts[0]) and is_valid_name(parts[1]):
        return Placement(tenant=parts[0], collection=parts[1])
    if len(parts) == 2 and is_valid_name(parts[0]):
        return Placement(tenant=parts[0], collection=parts[0])
    return Placement(tenant=default_tenant, collection=default_collection)


def ignore_reason(key: str) -> str | None:
    """Why a key is not a document to process (None: it is one)."""
    if not key:
        return "empty key"
    if key.endswith("/"):
        return "folder marker"
    if is_sync_internal(key):
        return "sync bookkeeping object"
    if any(part.startswith(".") for part in key.split("/")):
        return "hidden object"
    return None


def unsupported_reason(key: str) -> str | None:
    """A recorded reason when the key's type cannot be processed (checked before any work)."""
    ext = extension_of(key)
    if ext in ARCHIVES:
        return f"unsupported: '{ext}' archives are not ingested; extract the files and upload those"
    if ext not in SUPPORTED:
        shown = f"'{ext}'" if ext else "a file with no extension"
        return f"unsupported: {shown} is not a supported document type"
    return None


def is_paged(key: str) -> bool:
    return SUPPORTED.get(extension_of(key), ("", False))[1]
