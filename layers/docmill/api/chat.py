"""Retrieval-augmented chat over a tenant's chunks, with citations and per-tenant history.

One answer:

1. the conversation (the tenant's own; another tenant's id is "not found") and its last turns;
2. retrieval: the question (with the previous question, so that a follow-up such as "and
   for contractors?" still finds its topic) embedded and searched with a filter on the
   tenant and, when given, the collection; hits under ``min_score`` are dropped;
3. nothing left: the answer says the documents do not cover it, without citations and
   without calling the model (it could only invent);
4. otherwise the model gets the numbered chunks and is told to answer only from them and to
   cite them as [n]; the citations are the retrieved chunks it cited (all of the context when
   it cites none): a citation can only ever name a chunk retrieved for this answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import time

from pydantic import BaseModel, Field, PrivateAttr

from docmill.api.documents import document_id_in
from docmill.api.errors import InvalidRequest, NotFound
from docmill.api.ids import is_id, new_id
from docmill.api.state import StateStore, now_iso
from docmill.api.tenants import Principal, check_name
from docmill.generation.parsing import cited_numbers
from docmill.llm.base import ChatMessage, GenerationParams, LLMClient
from docmill.vectorstores.base import SearchFilter, SearchHit, VectorStore

CONVERSATION = "conversation"
NOT_COVERED = "The documents do not cover this question, so I cannot answer it from them."
SNIPPET_CHARS = 240

SYSTEM_PROMPT = (
    "You answer questions using only the numbered document excerpts below. "
    "Cite the excerpts you use as [1], [2] after the sentence they support. "
    "If the excerpts do not contain the answer, say that the documents do not cover it. "
    "Be concise.\n\nExcerpts:\n{context}"
)


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=8000)
    conversation_id: str | None = None
    collection: str | None = None
    model: str | None = None
    stream: bool = False


class Citation(BaseModel):
    ref: int  # the [n] the answer uses for it
    document_id: str | None
    source: str
    pages: list[int]
    chunk_id: str
    snippet: str
    score: float


class ChatAnswer(BaseModel):
    answer: str
    conversation_id: str
    citations: list[Citation]
    model: str | None = None
    #: milliseconds per step (retrieve, llm, total); served as a Server-Timing header
    _timings: dict[str, float] = PrivateAttr(default_factory=dict)

    @property
    def server_timing(self) -> str:
        return ", ".join(f"{name};dur={ms:.1f}" for name, ms in self._timings.items())


#: (tenant, requested model name or None) -> the client that answers; raises NotFound for an
#: unknown model. The fine-tuning capability plugs in here to serve a tuned adapter by job id.
ModelResolver = Callable[[str, str | None], LLMClient]


def default_resolver(llm: LLMClient | Callable[[], LLMClient]) -> ModelResolver:
    cache: dict[str, LLMClient] = {}

    def resolve(tenant: str, model: str | None) -> LLMClient:
        if "llm" not in cache:
            cache["llm"] = llm if isinstance(llm, LLMClient) else llm()
        client = cache["llm"]
        if model not in (None, "", "default", client.model_id):
            raise NotFound(f"no model {model!r} for this tenant")
        return client

    return resolve


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


def _source_name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1] or uri


def citation_for(ref: int, hit: SearchHit) -> Citation:
    return Citation(ref=ref, document_id=document_id_in(hit.source_uri), source=_source_name(hit.source_uri),
                    pages=list(hit.page_numbers), chunk_id=hit.chunk_id, snippet=_snippet(hit.text),
                    score=round(float(hit.score), 4))


def select_citations(answer: str, hits: Sequence[SearchHit]) -> list[Citation]:
    """The retrieved chunks the answer cites; numbers outside the context are ignored."""
    if not hits or NOT_COVERED_MARK in answer.lower():
        return []
    cited = [n for n in cited_numbers(answer) if 1 <= n <= len(hits)]
    refs = cited or list(range(1, len(hits) + 1))
    return [citation_for(n, hits[n - 1]) for n in refs]


NOT_COVERED_MARK = "documents do not cover"


@dataclass
class Prepared:
    """Everything decided before the model is called."""

    tenant: str
    conversation: dict[str, Any]
    hits: list[SearchHit]
    messages: list[ChatMessage]
    llm: LLMClient | None
    timings: dict[str, float] = field(default_factory=dict)
    started: float = 0.0


class ChatService:
    def __init__(
        self,
        state: StateStore,
        *,
        vector_store: Callable[[], VectorStore],
        embed_query: Callable[[str], list[float]],
        resolve_model: ModelResolver,
        top_k: int = 5,
        min_score: float = 0.3,
        history_turns: int = 6,
        params: GenerationParams | None = None,
    ) -> None:
        self.state = state
        self.vector_store = vector_store
        self.embed_query = embed_query
        self.resolve_model = resolve_model
        self.top_k = top_k
        self.min_score = min_score
        self.history_turns = history_turns
        self.params = params or GenerationParams(temperature=0.2, max_tokens=512)

    # -- conversations ------------------------------------------------------------------------

    def conversations(self, principal: Principal) -> list[dict[str, Any]]:
        return self.state.list(principal.tenant, CONVERSATION, newest_first=True)

    def conversation(self, principal: Principal, conversation_id: str) -> dict[str, Any]:
        record = self.state.get(principal.tenant, CONVERSATION, conversation_id) if is_id(conversation_id, "conv") else None
        if record is None:
            raise NotFound(f"no conversation {conversation_id!r}")
        return record

    def messages(self, principal: Principal, conversation_id: str) -> list[dict[str, Any]]:
        self.conversation(principal, conversation_id)
        return self.state.list(principal.tenant, f"message:{conversation_id}")

    def _append(self, tenant: str, conversation_id: str, role: str, content: str, **extra: Any) -> None:
        mid = new_id("msg")
        self.state.put(tenant, f"message:{conversation_id}", mid,
                       {"id": mid, "role": role, "content": content, "created": now_iso(), **extra})

    # -- answering ----------------------------------------------------------------------------

    def prepare(self, principal: Principal, request: ChatRequest) -> Prepared:
        started = time.perf_counter()
        tenant = principal.tenant
        if request.collection is not None:
            check_name(request.collection, "collection")
        if request.conversation_id:
            conversation = self.conversation(principal, request.conversation_id)
            history = self.state.list(tenant, f"message:{conversation['id']}", limit=self.history_turns,
                                      newest_first=True)[::-1]
        else:
            cid = new_id("conv")
            conversation = {"id": cid, "title": request.message[:80], "created": now_iso(),
                            "collection": request.collection}
            history = []
        llm = self.resolve_model(tenant, request.model)  # an unknown model fails before any work
        previous = [m["content"] for m in history if m["role"] == "user"][-1:]
        query = " ".join(previous + [request.message])
        embed_started = time.perf_counter()
        vector = self.embed_query(query)
        search_started = time.perf_counter()
        filters = SearchFilter(tenant=tenant, collection=request.collection)
        hits = [h for h in self.vector_store().search(vector, self.top_k, filters) if h.score >= self.min_score]
        timings = {"embed": (search_started - embed_started) * 1000, "search": (time.perf_counter() - search_started) * 1000}
        if not request.conversation_id:
            self.state.put(tenant, CONVERSATION, conversation["id"], conversation)
        timings["retrieve"] = (time.perf_counter() - started) * 1000
        if not hits:
            return Prepared(tenant, conversation, [], [], None, timings, started)
        context = "\n\n".join(
            f"[{i}] ({_source_name(h.source_uri)}{', p. ' + ','.join(map(str, h.page_numbers)) if h.page_numbers else ''})\n{h.text}"
            for i, h in enumerate(hits, 1)
        )
        messages = [ChatMessage(role="system", content=SYSTEM_PROMPT.format(context=context))]
        messages += [ChatMessage(role=m["role"], content=m["content"]) for m in history if m["role"] in ("user", "assistant")]
        messages.append(ChatMessage(role="user", content=request.message))
        return Prepared(tenant, conversation, hits, messages, llm, timings, started)

    def _finish(self, prepared: Prepared, request: ChatRequest, answer: str) -> ChatAnswer:
        citations = select_citations(answer, prepared.hits)
        cid = prepared.conversation["id"]
        self._append(prepared.tenant, cid, "user", request.message)
        self._append(prepared.tenant, cid, "assistant", answer,
                     citations=[c.model_dump() for c in citations])
        self.state.update(prepared.tenant, CONVERSATION, cid, updated=now_iso())
        result = ChatAnswer(answer=answer, conversation_id=cid, citations=citations,
                            model=prepared.llm.model_id if prepared.llm else None)
        result._timings = {**prepared.timings, "total": (time.perf_counter() - prepared.started) * 1000}
        return result

    def answer(self, principal: Principal, request: ChatRequest) -> ChatAnswer:
        prepared = self.prepare(principal, request)
        if prepared.llm is None:
            return self._finish(prepared, request, NOT_COVERED)
        called = time.perf_counter()
        reply = prepared.llm.chat(prepared.messages, self.params)
        prepared.timings["llm"] = (time.perf_counter() - called) * 1000
        return self._finish(prepared, request, reply.text.strip() or NOT_COVERED)

    def stream(self, principal: Principal, request: ChatRequest) -> Iterator[tuple[str, dict[str, Any]]]:
        """``("token", {"text"})`` events, then ``("citations", {...})``, then ``("done", {...})``.

        Everything that can be refused (unknown conversation or model) is refused by
        ``prepare`` before the first event, so the caller can still answer with an HTTP error.
        """
        prepared = self.prepare(principal, request)
        return self._events(prepared, request)

    def _events(self, prepared: Prepared, request: ChatRequest) -> Iterator[tuple[str, dict[str, Any]]]:
        parts: list[str] = []
        if prepared.llm is None:
            parts.append(NOT_COVERED)
            yield "token", {"text": NOT_COVERED}
        else:
            for piece in stream_reply(prepared.llm, prepared.messages, self.params):
                parts.append(piece)
                yield "token", {"text": piece}
        answer = "".join(parts).strip() or NOT_COVERED
        result = self._finish(prepared, request, answer)
        yield "citations", {"citations": [c.model_dump() for c in result.citations]}
        yield "done", {"conversation_id": result.conversation_id, "answer": result.answer, "model": result.model}


def stream_reply(llm: LLMClient, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
    """The reply as it is generated when the client can stream (``stream_chat``), else the
    whole reply as one piece once it is complete."""
    streamer = getattr(llm, "stream_chat", None)
    if callable(streamer):
        yield from streamer(messages, params)
        return
    yield llm.chat(messages, params).text


def sse_data(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def require_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{what} must be a non-empty string")
    return value
