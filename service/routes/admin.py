"""``POST /admin/reload``: swap in the index's current build without a restart (bearer token)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from index import IndexUnavailable
from service import schemas
from service.deps import get_state, require_admin
from service.errors import responses
from service.state import ServiceState
from settings import Settings


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.post("/admin/reload", response_model=schemas.ReloadResponse, dependencies=[Depends(require_admin)],
              responses=responses(401, 403, 409))
    async def admin_reload(st: ServiceState = Depends(get_state)):
        try:
            previous, build = await run_in_threadpool(st.reload)
        except IndexUnavailable as exc:
            raise HTTPException(409, f"kept the current index: {exc}") from None
        return schemas.ReloadResponse(previous_build=previous, build=build, chunks=len(st.retriever.index.chunks),
                                      reloads=st.reloads)

    return api
