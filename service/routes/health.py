"""Liveness, readiness, Prometheus metrics and the search page: routes without a bearer token."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import schemas
from service.deps import get_state
from service.state import ServiceState
from settings import Settings

STATIC = Path(__file__).resolve().parent.parent / "static"


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.get("/healthz", response_model=schemas.Health)
    async def healthz():
        return schemas.Health(status="ok")

    @api.get("/readyz", response_model=schemas.Ready, responses={503: {"model": schemas.Ready}})
    async def readyz(st: ServiceState = Depends(get_state)):
        body = schemas.Ready(ready=st.ready, chunks=len(st.retriever.index.chunks), model=st.embedder.name,
                             index_build=st.retriever.index.manifest.get("build", ""))
        return JSONResponse(body.model_dump(), status_code=200 if st.ready else 503)

    @api.get("/metrics", include_in_schema=False)
    async def metrics(st: ServiceState = Depends(get_state)):
        return Response(generate_latest(st.registry), media_type=CONTENT_TYPE_LATEST)

    @api.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return api
