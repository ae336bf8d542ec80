"""A scripted fake of an OpenAI-compatible HTTP server, for tests that must not touch the network.

Standard library only: a ``ThreadingHTTPServer`` on 127.0.0.1 at a free port, in a daemon thread. Each
``(method, path)`` route maps to a handler ``Request -> Reply``; :meth:`FakeOpenAIServer.script` queues
one-off replies (errors, delays, malformed JSON) that are served first, in order, before the route's
handler. Every request is recorded. Only ``/v1/embeddings`` has a ready-made handler
(:func:`embeddings_handler`); chat tests can add ``/v1/chat/completions`` the same way::

    with FakeOpenAIServer() as server:
        server.route("/v1/embeddings", embeddings_handler(hashed_embedding))
        server.script("/v1/embeddings", error_reply(500, "boom"))  # the first call fails, then normal
        client = OpenAI(base_url=server.url, api_key="x")
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What to send back: status, a body (dict/list -> JSON, str/bytes as they are), headers, and a delay."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "application/json"  # lets tests send malformed "JSON"
        return json.dumps(self.body).encode(), "application/json"


Handler = Callable[[Request], Reply]


def error_reply(status: int, message: str, kind: str = "server_error") -> Reply:
    """An error in OpenAI's JSON error format."""
    return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})


def malformed_reply() -> Reply:
    """HTTP 200 whose body is not JSON."""
    return Reply(200, "{this is not json")


def delayed(reply: Reply, seconds: float) -> Reply:
    return Reply(reply.status, reply.body, dict(reply.headers), seconds)


def hashed_embedding(text: str, dim: int = 32) -> list[float]:
    """A deterministic stand-in embedding: hashed character trigrams, so similar texts get similar vectors."""
    vector = np.zeros(dim, dtype=np.float64)
    padded = f"  {text.lower()}  "
    for start in range(len(padded) - 2):
        digest = hashlib.blake2b(padded[start : start + 3].encode(), digest_size=4).digest()
        vector[int.from_bytes(digest, "little") % dim] += 1.0
    return vector.tolist()


def embeddings_handler(embed: Callable[[str], list[float]] = hashed_embedding) -> Handler:
    """Handler speaking ``POST /v1/embeddings`` (``input`` a string or a list of strings)."""

    def handle(request: Request) -> Reply:
        payload = request.json or {}
        inputs = payload.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return error_reply(400, "'input' must be a non-empty string or list", "invalid_request_error")
        data = [{"object": "embedding", "index": i, "embedding": embed(text)} for i, text in enumerate(inputs)]
        tokens = sum(len(str(text).split()) for text in inputs)
        return Reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": payload.get("model", "fake"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    return handle


class FakeOpenAIServer:
    """Routes, scripted replies and a request log behind a real local HTTP server."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.scripted: dict[tuple[str, str], deque[Reply]] = {}
        self.requests: list[Request] = []
        self.in_flight = 0  # requests being served now, and the most ever served at once (concurrency tests)
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Request(self.command, self.path, headers, self.rfile.read(length))
                reply = fake._reply_for(request)
                with fake._lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1
                body, content_type = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", content_type))
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        if name != "Content-Type":
                            self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        self._server = ThreadingHTTPServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    # -- configuration -------------------------------------------------------------------------------------
    def route(self, path: str, handler: Handler, method: str = "POST") -> FakeOpenAIServer:
        """Serve ``handler`` for every ``method path`` request (after any scripted replies)."""
        with self._lock:
            self.routes[(method, path)] = handler
        return self

    def script(self, path: str, *replies: Reply, method: str = "POST") -> FakeOpenAIServer:
        """Queue ``replies`` for the next requests to ``method path``, one each, before the route handler."""
        with self._lock:
            self.scripted.setdefault((method, path), deque()).extend(replies)
        return self

    def calls(self, path: str | None = None) -> list[Request]:
        """Recorded requests, optionally only those to ``path``."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def _reply_for(self, request: Request) -> Reply:
        key = (request.method, request.path)
        with self._lock:
            self.requests.append(request)
            queue = self.scripted.get(key)
            if queue:
                return queue.popleft()
            handler = self.routes.get(key)
        if handler is None:
            return error_reply(404, f"no route for {request.method} {request.path}", "not_found")
        return handler(request)

    # -- lifecycle -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The ``base_url`` an OpenAI client wants (with ``/v1``)."""
        return f"{self.base}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
