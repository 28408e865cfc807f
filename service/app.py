"""The HTTP API (FastAPI): questions in, cited passages out, plus the table of contents and a search page.

The index and model are loaded before the app is built (see :func:`load_state`),
so a server never starts on a missing or mismatched index; the lifespan only
warms the model. Search runs in the thread pool (plain ``def`` routes), so the
event loop keeps answering ``/healthz`` while questions are encoded.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import sys
import threading
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query as QueryParam, Request
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from index import (
    Embedder, IndexUnavailable, Query, Retriever, SearchResult, UnknownSection, load_current_index, load_embedder,
    open_retriever,
)
from index.batching import BatchingEncoder
from service import schemas
from settings import Settings

log = logging.getLogger("reportqa.service")

STATIC = Path(__file__).with_name("static")
SECTION_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
CHUNK_ID = r"^[0-9a-f]{8,64}$"


@dataclass
class ServiceState:
    settings: Settings
    embedder: Embedder
    retriever: Retriever
    ready: bool = False
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    cache: "QueryCache | None" = None
    reloads: int = 0
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    encoder: BatchingEncoder | None = None

    def __post_init__(self) -> None:
        self.retriever.encode_fn = self.encoder.encode if self.encoder else None

    def reload(self) -> tuple[str, str]:
        """Load the current build and swap it in. Requests already running keep the retriever they
        started with; new ones get the new one. Raises IndexUnavailable (old index stays) on a bad build."""
        with self.reload_lock:
            previous = self.retriever.index.manifest.get("build", "")
            loaded = load_served_index(self.settings)
            retriever = open_retriever(self.settings, self.embedder, loaded)
            retriever.encode_fn = self.encoder.encode if self.encoder else None
            self.retriever = retriever
            if self.cache:
                self.cache.clear()
            self.reloads += 1
            return previous, loaded.manifest.get("build", "")


class QueryCache:
    """LRU of recent results: repeated questions (a linked GET /query, a refresh) skip the encoder."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[tuple, SearchResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> SearchResult | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def put(self, key: tuple, value: SearchResult) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


def load_served_index(settings: Settings):
    """The current build, memory-mapped when asked or when worker processes should share one copy."""
    return load_current_index(settings, mmap=settings.index_mmap or settings.workers > 1)


def load_state(settings: Settings, embedder: Embedder | None = None) -> ServiceState:
    """Load model and index; raises IndexUnavailable / ModelUnavailable with a one-line reason."""
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    loaded = load_served_index(settings)
    embedder = embedder or load_embedder(settings)
    retriever = open_retriever(settings, embedder, loaded)
    encoder = BatchingEncoder(embedder, settings.encode_max_batch) if settings.encode_max_batch > 1 else None
    if encoder and embedder.backend == "onnx-int8":
        log.warning("encode_max_batch > 1 with the onnx-int8 encoder: a batched question's vector depends on "
                    "its batch-mates (one activation scale per call); use --encoder onnx to batch exactly")
    return ServiceState(settings, embedder, retriever, cache=QueryCache(settings.query_cache_size), encoder=encoder)


def app_from_environment() -> FastAPI:
    """The app of one server worker process (``reportqa serve --workers N``), configured by REPORTQA_*."""
    return create_app(load_state(Settings()))


def _error(status: int, error: str, detail: list[str] | None = None) -> JSONResponse:
    return JSONResponse(schemas.ErrorResponse(error=error, detail=detail or []).model_dump(), status_code=status)


class Observe:
    """Prometheus counts and latency per route template (plain ASGI: no per-request task overhead)."""

    def __init__(self, app, latency, requests_total):
        self.app, self.latency, self.requests_total = app, latency, requests_total

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.latency.labels(route).observe(time.perf_counter() - started)
            self.requests_total.labels(route, scope["method"], str(status)).inc()


class RequestGuard:
    """Rejects, before any parsing, bodies over the limit (declared or streamed) and non-JSON bodies
    on JSON routes."""

    def __init__(self, app, max_bytes: int, json_routes: set[str]):
        self.app, self.max_bytes, self.json_routes = app, max_bytes, json_routes

    def _too_big(self, scope, receive, send):
        return _error(413, f"request body too large: at most {self.max_bytes} bytes")(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if scope["method"] == "POST" and scope["path"] in self.json_routes:
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                return await _error(415, "unsupported content type: send the question as JSON "
                                         "(Content-Type: application/json)")(scope, receive, send)
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _error(400, "invalid Content-Length header")(scope, receive, send)
            if int(declared) > self.max_bytes:
                return await self._too_big(scope, receive, send)
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        # Bodies are small (a question): buffer up to the limit, then replay to the app.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay(message), send)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._too_big(scope, receive, send)
        await self.app(scope, _replay({"type": "http.request", "body": body, "more_body": False}, receive), send)


def _replay(first: dict, then=None):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return first
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive




def create_app(state: ServiceState) -> FastAPI:
    settings = state.settings
    registry = state.registry
    requests_total = Counter("reportqa_requests_total", "HTTP requests", ["route", "method", "status"], registry=registry)
    latency = Histogram("reportqa_request_seconds", "HTTP request latency", ["route"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    Gauge("reportqa_index_chunks", "Chunks in the served index", registry=registry).set_function(
        lambda: len(state.retriever.index.chunks))
    Gauge("reportqa_index_documents", "Documents in the served index", registry=registry).set_function(
        lambda: len(state.retriever.index.documents))
    Gauge("reportqa_model_load_seconds", "Time to load the embedding model", registry=registry).set_function(
        lambda: state.embedder.load_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.embedder.encode_query("warm-up")  # first encode pays one-off costs; not a user's query
        state.ready = True
        yield
        state.ready = False
        if state.encoder:
            state.encoder.close()

    app = FastAPI(
        title="ReportQA",
        version="0.1.0",
        description="Ask a report a question; get the passages that answer it, each with a checkable citation.",
        lifespan=lifespan,
    )
    app.state.reportqa = state
    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes, json_routes={"/query"})
    app.add_middleware(Observe, latency=latency, requests_total=requests_total)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        reasons = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return _error(400, f"malformed JSON body: {err.get('msg')}")
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            reasons.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error(422, f"invalid request: {reasons[0]}" if reasons else "invalid request", reasons)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        return _error(500, "internal error: the server could not answer this request")

    # Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in its thread pool,
    # two thread hops per request for a few attribute reads (~0.8 ms of CPU per /query here).
    async def get_state() -> ServiceState:
        return state

    async def require_token(request: Request) -> None:
        token = settings.api_token
        if token is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise HTTPException(401, "missing or wrong bearer token")

    guarded = [Depends(require_token)]
    QueryBody = schemas.query_request_model(settings.max_question_chars)

    def search_and_keep(st: ServiceState, retriever, query: Query, key: tuple):
        try:
            result = retriever.search(query)
        except UnknownSection as exc:
            raise HTTPException(422, str(exc)) from None
        if st.cache:
            st.cache.put(key, result)
        return result

    async def run_query(req: schemas.QueryRequest, st: ServiceState) -> Response:
        question = req.question.strip()
        if not question:
            raise HTTPException(422, "question is empty: type a question")
        if len(question) > st.settings.max_question_chars:
            raise HTTPException(422, f"question is longer than {st.settings.max_question_chars} characters")
        started = time.perf_counter()
        retriever = st.retriever  # one index for the whole request, even if a reload swaps it meanwhile
        query = Query(question, req.k, req.mode, req.section, req.document, req.group_by_section)
        key = (retriever.index.manifest.get("build", ""), query)
        # A repeated question is answered from the cache on the event loop (no thread hop); a new one is
        # searched in the thread pool, where encoding releases the GIL and the loop stays free.
        result = st.cache.get(key) if st.cache else None
        if result is None:
            result = await bounded(search_and_keep, st, retriever, query, key)
        documents = retriever.index.documents
        return as_json(schemas.QueryResponse(
            question=question, mode=req.mode, answerable=result.answerable, confidence=round(result.confidence, 4),
            reasons=list(result.reasons), passages=[_passage(hit, documents) for hit in result.hits],
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        ))

    async def post_query(body: schemas.QueryRequest, st: ServiceState = Depends(get_state)):
        return await run_query(body, st)

    # The body model is built at run time (its documented length follows the settings), so it is
    # attached here rather than through a string annotation.
    post_query.__annotations__["body"] = QueryBody
    app.post("/query", response_model=schemas.QueryResponse, dependencies=guarded,
             responses={400: {"model": schemas.ErrorResponse}, 413: {"model": schemas.ErrorResponse},
                        415: {"model": schemas.ErrorResponse}, 422: {"model": schemas.ErrorResponse}})(post_query)

    @app.get("/query", response_model=schemas.QueryResponse, dependencies=guarded,
             responses={422: {"model": schemas.ErrorResponse}})
    async def get_query(
        q: str = QueryParam(..., max_length=100_000, description="The question (not blank).",
                            json_schema_extra=schemas.question_schema(settings.max_question_chars)),
        k: int = QueryParam(5, ge=1, le=50),
        mode: schemas.Mode = QueryParam("hybrid"),
        section: str | None = QueryParam(None, max_length=200),
        document: str | None = QueryParam(None, max_length=200),
        group_by_section: bool = QueryParam(False),
        st: ServiceState = Depends(get_state),
    ):
        req = schemas.QueryRequest(question=q, k=k, mode=mode, section=section, document=document,
                                   group_by_section=group_by_section)
        return await run_query(req, st)

    def as_json(model) -> Response:
        """The response model serialised once by pydantic; returned as is, FastAPI does not validate it again."""
        return Response(model.__pydantic_serializer__.to_json(model), media_type="application/json")

    async def bounded(fn, *args):
        """Run CPU-bound work in the thread pool (the event loop stays free) under the per-request limit."""
        try:
            return await asyncio.wait_for(run_in_threadpool(fn, *args), timeout=settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(503, f"no answer within {settings.request_timeout_s:g} s; the server is busy, try again") from None

    async def require_admin(request: Request) -> None:
        if settings.api_token is None:
            raise HTTPException(403, "admin routes are disabled: start the server with REPORTQA_API_TOKEN set")
        await require_token(request)

    @app.post("/admin/reload", response_model=schemas.ReloadResponse, dependencies=[Depends(require_admin)],
              responses={401: {"model": schemas.ErrorResponse}, 403: {"model": schemas.ErrorResponse},
                         409: {"model": schemas.ErrorResponse}})
    async def admin_reload(st: ServiceState = Depends(get_state)):
        try:
            previous, build = await run_in_threadpool(st.reload)
        except IndexUnavailable as exc:
            raise HTTPException(409, f"kept the current index: {exc}") from None
        return schemas.ReloadResponse(previous_build=previous, build=build, chunks=len(st.retriever.index.chunks),
                                      reloads=st.reloads)

    @app.get("/sections", response_model=schemas.SectionsResponse, dependencies=guarded)
    def list_sections(st: ServiceState = Depends(get_state)):
        index = st.retriever.index
        nodes: dict[tuple[str, str], schemas.SectionNode] = {}
        roots: list[schemas.SectionNode] = []
        for s in index.sections:
            node = schemas.SectionNode(id=s.id, document=s.document_id, number=s.number, title=s.title,
                                       label=_label(s), level=s.level, children=[])
            nodes[(s.document_id, s.id)] = node
            parent = nodes.get((s.document_id, s.parent_id)) if s.parent_id else None
            (parent.children if parent else roots).append(node)
        docs = [{"id": d.id, "title": d.title} for d in index.documents.values()]
        return schemas.SectionsResponse(documents=docs, sections=roots)

    @app.get("/sections/{section_id}", response_model=schemas.SectionDetail, dependencies=guarded,
             responses={404: {"model": schemas.ErrorResponse}})
    def get_section(
        section_id: str = PathParam(..., pattern=SECTION_ID),
        document: str | None = QueryParam(None, max_length=200),
        st: ServiceState = Depends(get_state),
    ):
        index = st.retriever.index
        matches = [s for s in index.sections if s.id == section_id and (document is None or s.document_id == document)]
        if not matches:
            raise HTTPException(404, f"no section {section_id!r}; GET /sections lists them")
        s = matches[0]
        chunks = [c for c in index.chunks if c.document_id == s.document_id and c.section_id == s.id]
        children = [c.id for c in index.sections if c.document_id == s.document_id and c.parent_id == s.id]
        text, spans = _section_text(chunks, s)
        return schemas.SectionDetail(
            id=s.id, document=s.document_id, number=s.number, title=s.title, label=_label(s), path=list(s.path),
            parent_id=s.parent_id, children=children, char_start=s.char_start, char_end=s.char_end,
            text=text, chunks=[schemas.SectionChunk(**_span(c).model_dump(), text_start=a, text_end=b)
                               for c, (a, b) in zip(chunks, spans)],
        )

    @app.get("/passages/{chunk_id}", response_model=schemas.PassageDetail, dependencies=guarded,
             responses={404: {"model": schemas.ErrorResponse}})
    def get_passage(chunk_id: str = PathParam(..., pattern=CHUNK_ID), st: ServiceState = Depends(get_state)):
        retriever = st.retriever
        index = retriever.index
        position = retriever.chunk_position.get(chunk_id)
        if position is None:
            raise HTTPException(404, f"no passage {chunk_id!r}")
        chunk = index.chunks[position]

        def neighbour(j: int):
            if 0 <= j < len(index.chunks) and index.chunks[j].document_id == chunk.document_id \
                    and index.chunks[j].section_id == chunk.section_id:
                return _span(index.chunks[j])
            return None

        return schemas.PassageDetail(chunk=_span(chunk), citation=_citation(chunk, index.documents),
                                     previous=neighbour(position - 1), next=neighbour(position + 1))

    @app.get("/healthz", response_model=schemas.Health)
    async def healthz():
        return schemas.Health(status="ok")

    @app.get("/readyz", response_model=schemas.Ready, responses={503: {"model": schemas.Ready}})
    async def readyz(st: ServiceState = Depends(get_state)):
        body = schemas.Ready(ready=st.ready, chunks=len(st.retriever.index.chunks), model=st.embedder.name,
                             index_build=st.retriever.index.manifest.get("build", ""))
        return JSONResponse(body.model_dump(), status_code=200 if st.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


class BackgroundServer:
    """A real uvicorn server for ``app`` in a background thread (tests, benchmarks, embedding the
    service in another program). ``start`` returns once ``/readyz`` answers 200."""

    def __init__(self, app, port: int, host: str = "127.0.0.1"):
        import uvicorn

        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="reportqa-uvicorn")

    def start(self, timeout: float = 120.0) -> "BackgroundServer":
        import httpx

        self.thread.start()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if not self.thread.is_alive():
                raise RuntimeError("the uvicorn server thread exited before it was ready")
            time.sleep(0.02)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _citation(chunk, documents) -> schemas.Citation:
    doc = documents.get(chunk.document_id)
    return schemas.Citation(
        document=chunk.document_id, document_title=doc.title if doc else "", section_id=chunk.section_id,
        section_title=chunk.section_title, section_path=list(chunk.section_path),
        char_start=chunk.char_start, char_end=chunk.char_end, page=chunk.page,
        page_label=getattr(chunk, "page_label", None),
    )


def _span(chunk) -> schemas.ChunkSpan:
    return schemas.ChunkSpan(chunk_id=chunk.id, ordinal=chunk.ordinal, char_start=chunk.char_start,
                             char_end=chunk.char_end, text=chunk.text)


def _passage(hit, documents) -> schemas.Passage:
    c = hit.chunk
    e = hit.explanation
    return schemas.Passage(
        chunk_id=c.id, text=c.text, score=round(hit.score, 6), citation=_citation(c, documents),
        highlights=[schemas.Highlight(text=h.text, start=h.text_start, end=h.text_end, char_start=h.char_start,
                                      char_end=h.char_end, score=round(h.score, 4)) for h in hit.highlights],
        explanation=schemas.Explanation(dense_score=e.dense_score, dense_rank=e.dense_rank, bm25_score=e.bm25_score,
                                        bm25_rank=e.bm25_rank, fused_score=e.fused_score),
    )


def _label(section) -> str:
    return section.title or "Opening (untitled)"


def _section_text(chunks, section) -> tuple[str, list[tuple[int, int]]]:
    """The section's text once (overlapping chunks repeat sentences), paragraphs kept apart, and each
    chunk's span in that text."""
    paragraphs = section.body_spans
    out, spans, covered, para = "", [], -1, None
    for c in chunks:
        start = None
        for sent in c.sentences:
            if sent.char_start >= covered:
                here = next((n for n, (a, b) in enumerate(paragraphs) if a <= sent.char_start < b), para)
                sep = "" if not out else (" " if here == para else "\n\n")
                out += sep
                if start is None:
                    start = len(out)
                out += c.text[sent.text_start:sent.text_end]
                covered, para = sent.char_end, here
            elif start is None:
                # An overlapped sentence: the chunk starts where that sentence already stands.
                found = out.find(c.text[sent.text_start:sent.text_end])
                start = found if found >= 0 else len(out)
        spans.append((start if start is not None else len(out), len(out)))
    return out, spans
