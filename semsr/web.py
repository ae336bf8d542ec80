"""The page to see SemSR work, served by the LangGraph server itself (``langgraph.json``: ``http.app``).

``GET /semsr`` is one static HTML/JS file (``semsr/page.html``): search the catalogue by title, click
products to build a session, type what the shopper said, and see the ranked list with titles, per-source
contributions, reasons and degraded flags. The page asks for recommendations through the server's own
``POST /runs/wait`` on the ``semsr`` graph: the one compiled graph every interface runs, no second path.

This app only adds what the graph does not do: ``GET /semsr/search?q=...`` searches the served profile's
catalogue by title (every word at a word start, most popular first; :func:`graphs.query.search_titles`).
The catalogue and its popularity are read from the prepared profile's manifest (checked by sha256) on
first use; no model is loaded here. Settings come from the environment once, at import (an entry point).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

from graphs.precheck import precheck_request
from graphs.query import search_titles
from graphs.services import ProfileServices, check_artifact, max_k_of, read_catalog
from semsr.settings import Settings, load_settings
from sessiondata.errors import ConfigError, DataError, InvalidRequest
from sessiondata.schema import Catalog

PAGE = Path(__file__).with_name("page.html")
MAX_RESULTS = 50
MAX_QUERY_CHARS = 200
RUN_PATH = re.compile(r"/runs(/wait|/stream)?$")


class CatalogSearch:
    """The served profile's catalogue and test-fold popularity, loaded once, searched by title."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: tuple[Catalog, np.ndarray, dict[str, Any]] | None = None

    def load(self) -> tuple[Catalog, np.ndarray, dict[str, Any]]:
        with self._lock:
            if self._loaded is None:
                manifest = ProfileServices(self.settings).manifest()
                fix = f"semsr prepare --dataset {self.settings.dataset} --profile {manifest.profile.name}"
                catalog = read_catalog(check_artifact(self.settings, manifest.catalog, "catalog", fix))
                stats_path = check_artifact(self.settings, manifest.folds["test"].stats, "fold statistics", fix)
                with np.load(stats_path, allow_pickle=False) as stats:
                    popularity = np.asarray(stats["popularity"], dtype=np.float64)
                about = {"profile": manifest.version_tag, "dataset": self.settings.dataset, "items": len(catalog)}
                self._loaded = (catalog, popularity, about)
            return self._loaded

    def search(self, text: str, limit: int) -> list[dict[str, Any]]:
        catalog, popularity, _ = self.load()
        found = search_titles(catalog.titles, popularity, text, limit)
        return [{"item_id": catalog.ids[i], "title": catalog.titles[i], "sessions": int(n)} for i, n in found]


settings = load_settings()
catalogue = CatalogSearch(settings)


async def page(request: Request) -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")


def search(request: Request) -> JSONResponse:  # sync: Starlette runs it in a thread (it reads files, scans titles)
    text = request.query_params.get("q", "")
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        return JSONResponse({"error": "limit must be an integer"}, status_code=400)
    if len(text) > MAX_QUERY_CHARS or not 1 <= limit <= MAX_RESULTS:
        detail = f"q has at most {MAX_QUERY_CHARS} characters; limit is 1 to {MAX_RESULTS}"
        return JSONResponse({"error": detail}, status_code=400)
    try:
        return JSONResponse({"items": catalogue.search(text, limit)})
    except (ConfigError, DataError) as error:
        return JSONResponse({"error": str(error)}, status_code=503)


def info(request: Request) -> JSONResponse:
    try:
        return JSONResponse(catalogue.load()[2])
    except (ConfigError, DataError) as error:
        return JSONResponse({"error": str(error)}, status_code=503)


async def to_page(request: Request) -> RedirectResponse:
    return RedirectResponse("/semsr")


class RequestCheck:
    """ASGI middleware: a run request (``POST .../runs``, ``/runs/wait``, ``/runs/stream``) whose ``input`` is
    malformed gets HTTP 422 with the same one-line :class:`InvalidRequest` text as the Python API and the CLI,
    before the server creates a run or writes a thread's checkpoint. Input the check cannot read as a request
    goes on to the graph unchanged, whose ``validate`` node checks it again.

    A waiting or streaming run whose request does not say ``on_disconnect`` gets ``"cancel"`` (the server's
    own default is ``"continue"``): a client that goes away does not leave its run computing for no one."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not RUN_PATH.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # in a thread: the first check loads the catalogue from disk (no blocking call on the event loop)
        refusal = await asyncio.to_thread(self._refusal, body, on_thread=scope["path"].startswith("/threads/"))
        if refusal is not None:
            await JSONResponse({"error": "InvalidRequest", "message": refusal}, status_code=422)(scope, receive, send)
            return
        if scope["path"].endswith(("/wait", "/stream")):
            body = _cancel_when_client_leaves(body)
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    def _refusal(body: bytes, *, on_thread: bool) -> str | None:
        try:
            payload = json.loads(body or b"{}")
            request = payload.get("input") if isinstance(payload, dict) else None
            if not isinstance(request, dict) or "messages" in request:
                return None  # a chat turn's messages are read by the graph's own reducer first
            catalog = catalogue.load()[0]
            precheck_request(request, catalog, max_k_of(catalog), has_session=on_thread)
        except InvalidRequest as error:
            return str(error)
        except Exception:  # not ours to judge here: the graph validates (and answers) it
            return None
        return None


def _cancel_when_client_leaves(body: bytes) -> bytes:
    """The run request with ``on_disconnect: "cancel"`` unless it says otherwise (unreadable: as it is)."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return body
    if not isinstance(payload, dict) or "on_disconnect" in payload:
        return body
    return json.dumps({**payload, "on_disconnect": "cancel"}).encode()


app = Starlette(
    middleware=[Middleware(RequestCheck)],
    routes=[
        Route("/semsr", page),
        Route("/semsr/", to_page),
        Route("/semsr/search", search),
        Route("/semsr/info", info),
    ],
)
