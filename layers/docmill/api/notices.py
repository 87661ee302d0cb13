"""The tenant's notice board: admins post (title, body, linked documents, pinned); everyone
in the tenant reads, pinned first, then newest first."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from docmill.api.documents import KIND as DOCUMENT
from docmill.api.errors import Forbidden, InvalidRequest, NotFound
from docmill.api.ids import is_id, new_id
from docmill.api.state import StateStore, now_iso
from docmill.api.tenants import Principal

KIND = "notice"


class NoticeRequest(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
    document_ids: list[str] = Field(default_factory=list, max_length=50)
    pinned: bool = False


class NoticeService:
    def __init__(self, state: StateStore) -> None:
        self.state = state

    def _check(self, principal: Principal, request: NoticeRequest, verb: str) -> None:
        # Admin first: a reader learns nothing about which notice ids exist.
        if not principal.admin:
            raise Forbidden(f"only the tenant's administrators {verb} notices")
        for doc_id in request.document_ids:
            if not is_id(doc_id, "doc") or self.state.get(principal.tenant, DOCUMENT, doc_id) is None:
                raise InvalidRequest(f"linked document {doc_id!r} not found")

    def post(self, principal: Principal, request: NoticeRequest) -> dict[str, Any]:
        self._check(principal, request, "post")
        notice = {"id": new_id("ntc"), **request.model_dump(), "author": principal.user, "created": now_iso()}
        self.state.put(principal.tenant, KIND, notice["id"], notice)
        return notice

    def update(self, principal: Principal, notice_id: str, request: NoticeRequest) -> dict[str, Any]:
        self._check(principal, request, "edit")
        current = self.get(principal, notice_id)
        return self.state.update(principal.tenant, KIND, notice_id, **request.model_dump(), updated=now_iso()) or current

    def delete(self, principal: Principal, notice_id: str) -> dict[str, Any]:
        if not principal.admin:
            raise Forbidden("only the tenant's administrators delete notices")
        notice = self.get(principal, notice_id)
        self.state.delete(principal.tenant, KIND, notice_id)
        return notice

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        notices = self.state.list(principal.tenant, KIND, newest_first=True)
        return sorted(notices, key=lambda n: not n.get("pinned"))  # stable: newest first within each

    def get(self, principal: Principal, notice_id: str) -> dict[str, Any]:
        notice = self.state.get(principal.tenant, KIND, notice_id) if is_id(notice_id, "ntc") else None
        if notice is None:
            raise NotFound(f"no notice {notice_id!r}")
        return notice
