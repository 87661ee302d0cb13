"""Per-source sync state: what was landed, at which version, so the next run moves only changes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from docmill.errors import StorageError
from docmill.storage import ObjectStore

STATE_FORMAT = 1


class StateEntry(BaseModel):
    key: str  # destination key (relative to the destination root)
    version: str | None = None
    sha256: str
    modified: str | None = None
    title: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class SyncState(BaseModel):
    format: int = STATE_FORMAT
    source: str
    type: str
    destination: str
    synced_at: str | None = None
    documents: dict[str, StateEntry] = Field(default_factory=dict)


def state_key(source_name: str) -> str:
    return f"{source_name}.json"


def load_state(store: ObjectStore, *, source_name: str, source_type: str, destination: str) -> SyncState:
    """The saved state, or an empty one for a first sync (or a state made for another destination)."""
    key = state_key(source_name)
    if not store.exists(key):
        return SyncState(source=source_name, type=source_type, destination=destination)
    try:
        state = SyncState.model_validate(store.read_json(key))
    except (ValueError, StorageError) as exc:
        raise StorageError(f"sync state {store.uri(key)} is unreadable ({exc}); move it away to resync") from exc
    if state.type != source_type or state.destination != destination:
        # Re-pointed source: the old state describes other objects; start over (nothing deleted).
        return SyncState(source=source_name, type=source_type, destination=destination)
    return state


def save_state(store: ObjectStore, state: SyncState) -> None:
    store.write_json(state_key(state.source), state.model_dump(mode="json"))
