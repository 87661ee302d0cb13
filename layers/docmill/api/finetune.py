"""The seam between the chat API and the fine-tuning capability (its own issue).

The API's ``POST/GET /api/v1/fine-tunes`` and ``POST /api/fine-tune`` routes call a
``FinetuneService``. Until a deployment provides one, the routes answer 501 with a clear
error instead of pretending. A tuned adapter is served to chat through the ``ModelResolver``
hook of ``docmill.api.chat`` (``"model": "<fine-tune job id>"``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from docmill.api.tenants import Principal


@runtime_checkable
class FinetuneService(Protocol):
    def start(self, principal: Principal, request: dict[str, Any]) -> dict[str, Any]:
        """Start a job for the caller's tenant; returns at least ``{"id", "status"}``."""
        ...

    def get(self, principal: Principal, job_id: str) -> dict[str, Any]:
        """The tenant's job (``docmill.api.errors.NotFound`` for any other id)."""
        ...

    def list(self, principal: Principal) -> list[dict[str, Any]]: ...
