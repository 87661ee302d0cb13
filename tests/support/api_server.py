"""The chat API served by uvicorn on 127.0.0.1 (a random port) in a background thread, plus
the helpers the API tests share: a chat LLM double and polling for ingestion."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import uvicorn

from docmill.api.app import ApiServices, create_app
from docmill.llm.base import ChatMessage
from tests.support.generation_doubles import FakeModel, stage_of


class ApiServer:
    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(services), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.services.close()


class ChatModel:
    """Plays the chat answer from its prompt (quotes excerpt [1] and cites it), and every
    dataset-generation stage through ``FakeModel``. Records the chat prompts it saw."""

    def __init__(self) -> None:
        self.generation = FakeModel()
        self.chat_prompts: list[list[ChatMessage]] = []
        self.lock = threading.Lock()

    def __call__(self, messages: list[ChatMessage]) -> str:
        if stage_of(messages) != "unknown":
            return self.generation(messages)
        with self.lock:
            self.chat_prompts.append(list(messages))
        first = re.search(r"\[1\] \([^)]*\)\n(.*?)(?:\n\n\[2\] |\Z)", messages[0].content, re.S)
        fact = " ".join(first.group(1).split()) if first else "nothing"
        return f"From the documents: {fact} [1]. Also see [99]."


def wait_for_status(client: httpx.Client, document_id: str, *, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/documents/{document_id}").json()
        if body["status"] in ("indexed", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def sse_events(lines: Sequence[str]) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream, in order."""
    events: list[tuple[str, str]] = []
    name, data = "message", []
    for line in lines:
        if not line.strip():
            if data:
                events.append((name, "\n".join(data)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        events.append((name, "\n".join(data)))
    return events
