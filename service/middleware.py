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


class RequestGuard:
    """Rejects, before any parsing, bodies over the limit (declared or streamed) and non-JSON bodies
    on JSON routes."""

    def __init__(self, app, max_bytes: int, json_routes: set[str]):
        self.app, self.max_bytes, self.json_routes = app, max_bytes, json_routes

    def _too_big(self, scope, receive, send):
        return error_response(413, f"request body too large: at most {self.max_bytes} bytes")(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if scope["method"] == "POST" and scope["path"] in self.json_routes:
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                return await error_response(415, "unsupported content type: send the question as JSON "
                                                 "(Content-Type: application/json)")(scope, receive, send)
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await error_response(400, "invalid Content-Length header")(scope, receive, send)
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
