"""Every error the API returns has one shape, ``{"error": "...", "detail": [...]}``, and a 4xx/5xx status."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import schemas

# Documented on routes that take input: the shape of their 4xx answers.
ERROR_RESPONSES = {status: {"model": schemas.ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 415, 422, 503)}


def error_response(status: int, error: str, detail: list[str] | None = None) -> JSONResponse:
    return JSONResponse(schemas.ErrorResponse(error=error, detail=detail or []).model_dump(), status_code=status)


def responses(*statuses: int) -> dict:
    """The ``responses=`` of a route that can answer these error statuses."""
    return {s: ERROR_RESPONSES[s] for s in statuses}


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    reasons = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON body: {err.get('msg')}")
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        reasons.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return error_response(422, f"invalid request: {reasons[0]}" if reasons else "invalid request", reasons)


async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail))


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return error_response(500, "internal error: the server could not answer this request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
