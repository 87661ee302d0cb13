"""Collection and tenant names, and where a (tenant, collection) lives in an output store.

Both names become folder names, S3 key parts and index filter values, so they are held to a
character set that cannot climb out of a folder or alias another name: 1-64 characters from
``A-Z a-z 0-9 . _ -``, starting with a letter or digit, without ``..`` (``../x``, ``a/b``,
``.``, the empty name and overlong names are refused with a ``ConfigurationError``).

Layout: the default tenant keeps ``collections/<collection>/`` (homes written before tenants
were part of the path stay valid); any other tenant lives under
``tenants/<tenant>/collections/<collection>/``. Two tenants ingesting the same path therefore
never share a state file, an output or a failure record.
"""

from __future__ import annotations

import re

from docmill.errors import ConfigurationError

DEFAULT_TENANT = "default"
MAX_NAME_LENGTH = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_name(kind: str, value: str | None) -> str:
    """``value`` when it is a safe collection/tenant name, else a ConfigurationError naming it."""
    shown = repr(value if value is None or len(value) <= 80 else value[:80] + "...")
    if not value:
        raise ConfigurationError(f"the {kind} name must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ConfigurationError(f"{kind} name {shown} is {len(value)} characters long; at most {MAX_NAME_LENGTH}")
    if not _NAME.match(value) or ".." in value:
        raise ConfigurationError(
            f"invalid {kind} name {shown}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit, without '..' or '/'"
        )
    return value


def is_valid_name(value: str | None) -> bool:
    try:
        validate_name("collection", value)
    except ConfigurationError:
        return False
    return True


def collection_prefix(collection: str, tenant: str | None = None) -> str:
    """Key prefix (no trailing slash) of a tenant's collection in an output store."""
    validate_name("collection", collection)
    if tenant is None or tenant == DEFAULT_TENANT:
        return f"collections/{collection}"
    return f"tenants/{validate_name('tenant', tenant)}/collections/{collection}"
