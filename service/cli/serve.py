"""``reportqa serve``: the HTTP API and the search page, one process or several workers."""
from __future__ import annotations

import os
import sys

from service.cli.common import EXIT_USAGE, CliError, settings_from

EXAMPLES = "examples:\n  reportqa serve\n  reportqa serve --port 8080 --index /srv/reportqa/index"


def register(add) -> None:
    p = add("serve", "Serve the HTTP API and the search page.", run, EXAMPLES)
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--allow-remote", action="store_true", help="allow binding an address other than loopback")
    p.add_argument("--workers", type=int, help="server processes (default 1); with N cores, N workers and "
                   "--threads 1 give the most requests/s")
    p.add_argument("--threads", type=int, help="threads per question encode (default 1)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


def run(args) -> int:
    import uvicorn

    from service.app import create_app
    from service.deps import is_loopback
    from service.state import load_state

    settings = settings_from(args)
    if not is_loopback(settings.host) and not args.allow_remote:
        raise CliError(f"refusing to bind {settings.host}: pass --allow-remote to serve beyond this machine", EXIT_USAGE)
    require_free_port(settings.host, settings.port)  # before seconds of loading, not after
    if settings.workers > 1:
        # Worker processes build their own app from REPORTQA_* variables; uvicorn's supervisor restarts
        # them on SIGHUP, so each reloads the index's current build.
        os.environ.update(settings.to_environment())
        probe = load_state(settings)  # fail here, with one message, if the index or model is unusable
        if probe.encoder:
            probe.encoder.close()
        del probe
        print(f"serving on http://{settings.host}:{settings.port} with {settings.workers} worker processes",
              file=sys.stderr)
        uvicorn.run("service.app:app_from_environment", factory=True, workers=settings.workers, host=settings.host,
                    port=settings.port, log_level=args.log_level, access_log=False)
        return 0
    state = load_state(settings)
    app = create_app(state)
    reload_on_sighup(state)
    print(f"serving {len(state.retriever.index.chunks)} chunks on http://{settings.host}:{settings.port}", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0


def require_free_port(host: str, port: int) -> None:
    import errno
    import socket

    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is free
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {host} is already in use: stop the other server or pick another --port",
                           EXIT_USAGE) from None
        raise CliError(f"cannot bind {host}:{port}: {exc.strerror or exc}", EXIT_USAGE) from None
    finally:
        probe.close()


def reload_on_sighup(state) -> None:
    """`kill -HUP <pid>` swaps in the index's current build without a restart (like POST /admin/reload)."""
    import signal
    import threading

    from index import IndexUnavailable

    def reload() -> None:
        try:
            previous, build = state.reload()
            print(f"reloaded index: {previous} -> {build}", file=sys.stderr)
        except IndexUnavailable as exc:
            print(f"reload refused, kept the current index: {exc}", file=sys.stderr)

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=reload, daemon=True).start())
