"""The one ASGI application of the chat API: ``docmill serve`` locally, Mangum in Lambda.

Every API route lives under ``/api``; everything else is the web app's static build (when a
folder is given), with unknown paths answered by its ``index.html`` (client-side routing).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docmill import __version__
from docmill.api.auth import Authenticator, TenantRateLimiter
from docmill.api.chat import ChatRequest, ChatService, sse_data
from docmill.api.datasets import DatasetRequest, DatasetService
from docmill.api.documents import DocumentService, public
from docmill.api.errors import ApiError, Forbidden, InvalidRequest, NotImplementedYet, PayloadTooLarge, code_for
from docmill.api.finetune import FinetuneService
from docmill.api.notices import NoticeRequest, NoticeService
from docmill.api.tenants import Principal
from docmill.errors import DocmillError, LLMError, TransientError

API = "/api/v1"


@dataclass
class ApiServices:
    documents: DocumentService
    chat: ChatService
    datasets: DatasetService
    notices: NoticeService
    auth: Authenticator
    limiter: TenantRateLimiter
    finetune: FinetuneService | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    cors_origins: list[str] = field(default_factory=list)
    web_dir: Path | None = None
    health: dict[str, Any] = field(default_factory=dict)
    closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for closer in self.closers:
            closer()


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


class BodyLimit:
    """413 for bodies over the limit: at once from Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes + 64 * 1024  # room for the multipart framing around the file
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse(error_body("payload_too_large", self._message()), status_code=413)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"the request body is over the {self.max_bytes // (1024 * 1024) or 1} MB limit"


def principal(request: Request) -> Principal:
    """The caller, from the credential; then the tenant's rate limit."""
    services: ApiServices = request.app.state.services
    who = services.auth.authenticate(request.headers, request.scope)
    services.limiter.check(who)
    return who


Caller = Annotated[Principal, Depends(principal)]


class PresignRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    collection: str | None = None


class BriefChat(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=8000)
    conversation_id: str | None = None
    collection: str | None = None
    model: str | None = None
    stream: bool = False


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(title="docmill chat API", version=__version__, openapi_url=f"{API}/openapi.json",
                  docs_url=f"{API}/docs", redoc_url=None)
    app.state.services = services

    # -- errors -------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)

    @app.exception_handler(DocmillError)
    async def _domain_error(request: Request, exc: DocmillError) -> JSONResponse:
        if isinstance(exc, LLMError):
            status = 503 if isinstance(exc, TransientError) else 502
            return JSONResponse(error_body("model_unavailable", f"the model failed to answer: {exc.message}"),
                                status_code=status, headers={"Retry-After": "5"} if status == 503 else None)
        return JSONResponse(error_body(exc.code, exc.message), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors]
        if errors and errors[0].get("type") == "json_invalid":
            message = f"malformed JSON body: {errors[0].get('ctx', {}).get('error', 'cannot be parsed')}"
        elif details:
            where = ".".join(str(p) for p in details[0]["loc"] if p != "body") or "body"
            message = f"{where}: {details[0]['msg']}"
        else:
            message = "invalid request"
        return JSONResponse(error_body("invalid_request", message, details=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 404 and services.web_dir and not request.url.path.startswith("/api"):
            index = services.web_dir / "index.html"
            if index.is_file():
                return FileResponse(index)
        code = code_for(exc.status_code)
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    # -- routes -------------------------------------------------------------------------------

    @app.get(f"{API}/health", tags=["health"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, **services.health}

    @app.get(f"{API}/me", tags=["tenants"])
    def me(who: Caller) -> dict[str, Any]:
        return who.model_dump(exclude={"rate_limit_per_minute"})

    async def _upload(who: Principal, file: UploadFile, collection: str | None, metadata: dict[str, Any] | None) -> Any:
        data = await file.read()
        if len(data) > services.max_upload_bytes:
            raise PayloadTooLarge(f"the file is over the {services.max_upload_bytes // (1024 * 1024) or 1} MB limit")
        record = await run_in_threadpool(services.documents.upload, who, file.filename, data,
                                         collection=collection, metadata=metadata)
        return JSONResponse({"id": record["id"], "status": record["status"], "name": record["name"],
                             "collection": record["collection"]}, status_code=202)

    @app.post(f"{API}/documents", status_code=202, tags=["documents"])
    async def upload_document(who: Caller, file: Annotated[UploadFile, File()],
                              collection: Annotated[str | None, Form()] = None) -> Any:
        return await _upload(who, file, collection, None)

    @app.post(f"{API}/documents/uploads", status_code=201, tags=["documents"])
    def presigned_upload(who: Caller, body: PresignRequest) -> dict[str, Any]:
        return services.documents.presign(who, body.name, collection=body.collection, max_bytes=5 * 1024**3)

    @app.get(f"{API}/documents", tags=["documents"])
    def list_documents(who: Caller, collection: str | None = None) -> dict[str, Any]:
        return {"documents": [public(r) for r in services.documents.list(who, collection)]}

    @app.get(f"{API}/documents/{{document_id}}", tags=["documents"])
    def get_document(who: Caller, document_id: str) -> dict[str, Any]:
        return public(services.documents.get(who, document_id))

    @app.delete(f"{API}/documents/{{document_id}}", tags=["documents"])
    def delete_document(who: Caller, document_id: str) -> dict[str, Any]:
        record = services.documents.delete(who, document_id)
        return {"id": record["id"], "deleted": True}

    def _chat(who: Principal, body: ChatRequest) -> Any:
        if body.stream:
            from sse_starlette.sse import EventSourceResponse

            events = services.chat.stream(who, body)  # refusals happen here, before any event

            def frames() -> Iterator[dict[str, str]]:
                try:
                    for name, data in events:
                        yield {"event": name, "data": sse_data(data)}
                except DocmillError as exc:  # after the 200 is sent, a failure is an event
                    code = "model_unavailable" if isinstance(exc, LLMError) else exc.code
                    yield {"event": "error", "data": sse_data(error_body(code, exc.message))}

            return EventSourceResponse(frames(), ping=15)
        result = services.chat.answer(who, body)
        return JSONResponse(result.model_dump(), headers={"Server-Timing": result.server_timing})

    @app.post(f"{API}/chat", tags=["chat"])
    def chat(who: Caller, body: ChatRequest) -> Any:
        return _chat(who, body)

    @app.get(f"{API}/conversations", tags=["chat"])
    def conversations(who: Caller) -> dict[str, Any]:
        return {"conversations": services.chat.conversations(who)}

    @app.get(f"{API}/conversations/{{conversation_id}}", tags=["chat"])
    def conversation(who: Caller, conversation_id: str) -> dict[str, Any]:
        return {**services.chat.conversation(who, conversation_id),
                "messages": services.chat.messages(who, conversation_id)}

    @app.post(f"{API}/datasets", status_code=202, tags=["datasets"])
    def start_dataset(who: Caller, body: DatasetRequest) -> dict[str, Any]:
        return services.datasets.start(who, body)

    @app.get(f"{API}/datasets", tags=["datasets"])
    def list_datasets(who: Caller) -> dict[str, Any]:
        return {"datasets": services.datasets.list(who)}

    @app.get(f"{API}/datasets/{{dataset_id}}", tags=["datasets"])
    def get_dataset(who: Caller, dataset_id: str) -> dict[str, Any]:
        return services.datasets.get(who, dataset_id)

    def _finetune() -> FinetuneService:
        if services.finetune is None:
            raise NotImplementedYet("fine-tuning is not configured on this server")
        return services.finetune

    @app.post(f"{API}/fine-tunes", status_code=202, tags=["fine-tunes"])
    def start_finetune(who: Caller, body: dict[str, Any]) -> dict[str, Any]:
        return _finetune().start(who, body)

    @app.get(f"{API}/fine-tunes", tags=["fine-tunes"])
    def list_finetunes(who: Caller) -> dict[str, Any]:
        return {"fine_tunes": _finetune().list(who)}

    @app.get(f"{API}/fine-tunes/{{job_id}}", tags=["fine-tunes"])
    def get_finetune(who: Caller, job_id: str) -> dict[str, Any]:
        return _finetune().get(who, job_id)

    @app.get(f"{API}/notices", tags=["notices"])
    def list_notices(who: Caller) -> dict[str, Any]:
        return {"notices": services.notices.list(who)}

    @app.post(f"{API}/notices", status_code=201, tags=["notices"])
    def post_notice(who: Caller, body: NoticeRequest) -> dict[str, Any]:
        return services.notices.post(who, body)

    @app.get(f"{API}/notices/{{notice_id}}", tags=["notices"])
    def get_notice(who: Caller, notice_id: str) -> dict[str, Any]:
        return services.notices.get(who, notice_id)

    @app.put(f"{API}/notices/{{notice_id}}", tags=["notices"])
    def update_notice(who: Caller, notice_id: str, body: NoticeRequest) -> dict[str, Any]:
        return services.notices.update(who, notice_id, body)

    @app.delete(f"{API}/notices/{{notice_id}}", tags=["notices"])
    def delete_notice(who: Caller, notice_id: str) -> dict[str, Any]:
        services.notices.delete(who, notice_id)
        return {"id": notice_id, "deleted": True}

    # -- the paths of the original brief --------------------------------------------------------

    @app.post("/api/upload", status_code=202, tags=["brief"])
    async def brief_upload(who: Caller, file: Annotated[UploadFile, File()],
                           metadata: Annotated[str | None, Form()] = None) -> Any:
        try:
            meta = json.loads(metadata) if metadata else {}
        except ValueError:
            raise InvalidRequest("metadata must be a JSON object") from None
        if not isinstance(meta, dict):
            raise InvalidRequest("metadata must be a JSON object")
        collection = meta.pop("collection", None)
        return await _upload(who, file, collection if isinstance(collection, str) else None, meta)

    @app.post("/api/fine-tune", status_code=202, tags=["brief"])
    def brief_finetune(who: Caller, body: dict[str, Any]) -> dict[str, Any]:
        return _finetune().start(who, body)

    @app.post("/api/chat", tags=["brief"])
    def brief_chat(who: Caller, body: BriefChat) -> Any:
        if not services.auth.user_belongs(who, body.user_id):
            raise Forbidden("user_id is not the caller's tenant or one of its users")
        return _chat(who, ChatRequest(message=body.query, conversation_id=body.conversation_id,
                                      collection=body.collection, model=body.model, stream=body.stream))

    # -- web app ----------------------------------------------------------------------------------

    if services.web_dir is not None and (services.web_dir / "index.html").is_file():
        from starlette.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=str(services.web_dir), html=True), name="web")

    if services.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=services.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, max_bytes=services.max_upload_bytes)
    return app
