"""Plain-ASGI middleware (no per-request task overhead): Prometheus observation and the body guard."""
from __future__ import annotations

import time

from service.errors import error_response


class Observe:
    """Prometheus counts and latency per route template."""

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


class _BodyTooLarge(Exception):
    """An upload streamed past its limit (raised out of ``receive``, answered 413 by the guard)."""


class RequestGuard:
    """Rejects, before any parsing, bodies over the limit (declared or streamed) and non-JSON bodies
    on JSON routes. Upload routes have their own, larger limit and are streamed to the app, counted
    as they arrive, instead of buffered."""

    def __init__(self, app, max_bytes: int, json_routes: set[str], upload_routes: dict[str, int] | None = None):
        self.app, self.max_bytes, self.json_routes = app, max_bytes, json_routes
        self.upload_routes = upload_routes or {}

    @staticmethod
    def _too_big(limit: int, scope, receive, send):
        return error_response(413, f"request body too large: at most {limit} bytes")(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if scope["method"] == "POST" and scope["path"] in self.json_routes:
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                return await error_response(415, "unsupported content type: send the question as JSON "
                                                 "(Content-Type: application/json)")(scope, receive, send)
        upload = scope["method"] in ("POST", "PUT") and scope["path"] in self.upload_routes
        limit = self.upload_routes[scope["path"]] if upload else self.max_bytes
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await error_response(400, "invalid Content-Length header")(scope, receive, send)
            if int(declared) > limit:
                return await self._too_big(limit, scope, receive, send)
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        if upload:
            return await self._streamed(limit, scope, receive, send)
        # Bodies are small (a question): buffer up to the limit, then replay to the app.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay(message), send)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await self._too_big(limit, scope, receive, send)
        await self.app(scope, _replay({"type": "http.request", "body": body, "more_body": False}, receive), send)

    async def _streamed(self, limit: int, scope, receive, send):
        seen, started, overflow = 0, False, False

        async def counted():
            nonlocal seen, overflow
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    overflow = True
                    raise _BodyTooLarge()
            return message

        async def noting(message):
            nonlocal started
            if overflow and not started:
                return  # the app's own answer to a cut-off body (a parse error) gives way to the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, noting)
        except _BodyTooLarge:
            if started:
                raise
        if overflow and not started:
            await self._too_big(limit, scope, receive, send)


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
