"""A real uvicorn server for an app in a background thread (tests, benchmarks, embedding the service
in another program)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass


class BackgroundServer:
    """``start`` returns once ``/readyz`` answers 200; ``stop`` asks uvicorn to exit and waits."""

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


@dataclass
class ThreadedService:
    """A service started in this process (what the benchmark measures): its URL, model, retriever,
    and how long each start-up step took."""

    url: str
    embedder: object
    retriever: object
    timings: dict[str, float]
    server: BackgroundServer

    def stop(self) -> None:
        self.server.stop()


def start_in_thread(settings, embedder=None) -> ThreadedService:
    """load_state + create_app + a BackgroundServer on a free port, until /readyz is 200, each step timed."""
    import socket

    from service.app import create_app
    from service.state import load_state

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    state = load_state(settings, embedder)
    t1 = time.perf_counter()
    app = create_app(state)
    t2 = time.perf_counter()
    server = BackgroundServer(app, port).start()
    t3 = time.perf_counter()
    timings = {"start_to_ready_s": t3 - t0, "load_state_s": t1 - t0, "model_load_s": state.embedder.load_seconds,
               "create_app_s": t2 - t1, "server_start_to_ready_s": t3 - t2}
    return ThreadedService(server.url, state.embedder, state.retriever, timings, server)
