"""The HTTP API (FastAPI): wires the route areas (:mod:`service.routes`), the state, the error shape
and the middleware into one app.

The index and model are loaded before the app is built (:func:`service.state.load_state`), so a
server never starts on a missing or mismatched index; the lifespan only warms the model. Search runs
in the thread pool, so the event loop keeps answering ``/healthz`` while questions are encoded.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram

from service.errors import install_error_handlers
from service.middleware import Observe, RequestGuard
from service.routes import AREAS
from service.state import CurrentWatcher, ServiceState, load_state
from service.uploads import UPLOAD_ROUTE
from settings import Settings

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _metrics(state: ServiceState) -> tuple[Histogram, Counter]:
    registry = state.registry
    requests_total = Counter("reportqa_requests_total", "HTTP requests", ["route", "method", "status"], registry=registry)
    latency = Histogram("reportqa_request_seconds", "HTTP request latency", ["route"], registry=registry,
                        buckets=LATENCY_BUCKETS)
    Gauge("reportqa_index_chunks", "Chunks in the served index", registry=registry).set_function(
        lambda: len(state.retriever.index.chunks))
    Gauge("reportqa_index_documents", "Documents in the served index", registry=registry).set_function(
        lambda: len(state.retriever.index.documents))
    Gauge("reportqa_model_load_seconds", "Time to load the embedding model", registry=registry).set_function(
        lambda: state.embedder.load_seconds)
    return latency, requests_total


def create_app(state: ServiceState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.embedder.encode_query("warm-up")  # first encode pays one-off costs; not a user's query
        # Each server process watches CURRENT itself, so every worker serves a new build within a poll.
        interval = state.settings.reload_poll_s
        watcher = CurrentWatcher(state, interval).start() if interval > 0 else None
        state.ready = True
        yield
        state.ready = False
        if watcher:
            watcher.stop()
        if state.encoder:
            state.encoder.close()

    app = FastAPI(
        title="ReportQA",
        version="0.1.0",
        description="Ask a report a question; get the passages that answer it, each with a checkable citation.",
        lifespan=lifespan,
    )
    app.state.reportqa = state
    latency, requests_total = _metrics(state)
    app.add_middleware(RequestGuard, max_bytes=state.settings.max_body_bytes, json_routes={"/query"},
                       upload_routes={UPLOAD_ROUTE: state.settings.max_upload_bytes})
    app.add_middleware(Observe, latency=latency, requests_total=requests_total)
    install_error_handlers(app)
    for area in AREAS:
        app.include_router(area.router(state.settings))
    return app


def app_from_environment() -> FastAPI:
    """The app of one server worker process (``reportqa serve --workers N``), configured by REPORTQA_*."""
    return create_app(load_state(Settings()))
