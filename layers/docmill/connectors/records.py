"""Database records (MongoDB, Elasticsearch) as documents a partitioner can read.

A record becomes Markdown by default: its title as the heading, each configured text field as
a section (so ``by_title`` chunking keeps fields apart), and the remaining scalar fields as a
short key/value list; nested values are shown as JSON. ``format: json`` lands the record as
pretty JSON instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from docmill.connectors.base import ConnectorOptions

RecordFormat = Literal["markdown", "json"]


class RecordOptions(ConnectorOptions):
    """Options shared by the record sources."""

    text_fields: list[str] = Field(default_factory=list, description="fields that hold the text; empty = all strings")
    title_field: str | None = None
    author_field: str | None = None
    modified_field: str | None = Field(None, description="a field that changes on every update (used as version)")
    url_template: str | None = Field(None, description="e.g. https://kb.example.com/articles/{id}")
    format: RecordFormat = "markdown"


def get_path(record: Mapping[str, Any], path: str | None) -> Any:
    """``a.b.c`` lookup in nested mappings; None when any step is missing."""
    if not path:
        return None
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


def content_version(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:32]


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def render_record(
    record: Mapping[str, Any], *, title: str, text_fields: Sequence[str], fmt: RecordFormat
) -> tuple[bytes, str, str]:
    """(bytes, content type, file extension) for one record."""
    if fmt == "json":
        data = json.dumps(record, ensure_ascii=False, indent=2, default=str, sort_keys=True)
        return (data + "\n").encode("utf-8"), "application/json", ".json"
    lines = [f"# {title}", ""]
    fields = list(text_fields) or [k for k, v in record.items() if isinstance(v, str) and len(v) > 80]
    for name in fields:
        value = get_path(record, name)
        if value in (None, ""):
            continue
        lines += [f"## {name}", "", value if isinstance(value, str) else f"```json\n{json.dumps(value, ensure_ascii=False, indent=2, default=str)}\n```", ""]
    rest = {k: v for k, v in record.items() if k not in fields}
    if rest:
        lines += ["## Fields", ""]
        for key, value in rest.items():
            shown = value if _scalar(value) else json.dumps(value, ensure_ascii=False, default=str)
            lines.append(f"- **{key}**: {shown}")
        lines.append("")
    return "\n".join(lines).encode("utf-8"), "text/markdown; charset=utf-8", ".md"
