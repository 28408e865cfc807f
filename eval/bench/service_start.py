"""What the service suite needs from a service it starts in-process. The benchmark does not import the
service: the caller (the command line, a test) passes a starter, e.g. ``service.server.start_in_thread``."""
from __future__ import annotations

from typing import Protocol


class LiveService(Protocol):
    url: str
    embedder: object  # the question encoder the server uses
    retriever: object  # the retriever it serves
    timings: dict[str, float]  # start_to_ready_s, load_state_s, model_load_s, create_app_s, server_start_to_ready_s

    def stop(self) -> None: ...


class StartService(Protocol):
    def __call__(self, settings, embedder=None) -> LiveService: ...
