"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It is a test double for a vLLM / llama.cpp server (which this machine cannot run): it speaks
the real wire format of ``POST /v1/chat/completions`` and ``GET /v1/models``, answers after a
fixed latency, records the arrival time (``time.monotonic``) and body of every request, and
can be scripted to fail: ``server.fail_next(429, retry_after="1")``, ``server.fail_next(500)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAIServer:
    def __init__(self, *, latency_s: float = 0.0, model: str = "meta-llama/Meta-Llama-3-8B-Instruct",
                 reply: Any = None) -> None:
        self.latency_s = latency_s
        self.model = model
        #: callable(body) -> str; default echoes the last user message
        self.reply = reply or (lambda body: "echo: " + body["messages"][-1]["content"])
        self.arrivals: list[float] = []
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._failures: deque[tuple[int, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            for _ in range(times):
                self._failures.append((status, headers))

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], text: str) -> None:
                """The streaming wire format: one ``chat.completion.chunk`` per word, then [DONE]."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                words = text.split(" ")
                pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
                for _i, piece in enumerate([{"role": "assistant"}] + [{"content": p} for p in pieces]):
                    chunk = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": body.get("model", fake.model),
                             "choices": [{"index": 0, "delta": piece, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                final = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": body.get("model", fake.model), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": fake.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.arrivals.append(arrived)
                    fake.bodies.append(body)
                    fake.headers.append(dict(self.headers))
                    failure = fake._failures.popleft() if fake._failures else None
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if failure is not None:
                    status, headers = failure
                    self._send(status, {"error": {"message": f"scripted {status}", "code": status}}, headers)
                    return
                if fake.latency_s:
                    time.sleep(fake.latency_s)
                text = fake.reply(body)
                if body.get("stream"):
                    self._stream(body, text)
                    return
                prompt_tokens = sum(len(m["content"].split()) + 4 for m in body["messages"])
                completion_tokens = len(text.split())
                self._send(200, {
                    "id": f"chatcmpl-{len(fake.arrivals)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", fake.model),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "logprobs": None, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                })

        return Handler
