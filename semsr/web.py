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

import threading
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

from graphs.query import search_titles
from graphs.services import ProfileServices, check_artifact, read_catalog
from semsr.settings import Settings, load_settings
from sessiondata.errors import ConfigError, DataError
from sessiondata.schema import Catalog

PAGE = Path(__file__).with_name("page.html")
MAX_RESULTS = 50
MAX_QUERY_CHARS = 200


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


app = Starlette(
    routes=[
        Route("/semsr", page),
        Route("/semsr/", to_page),
        Route("/semsr/search", search),
        Route("/semsr/info", info),
    ]
)
