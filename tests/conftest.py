"""Session-scoped fixtures: the real model, the bundled report's index and a real uvicorn server,
each built once per test session and shared."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from index.embed import configure_runtime  # noqa: E402
from settings import BUNDLED_REPORT, PROJECT_ROOT, Settings  # noqa: E402

configure_runtime()  # the test session is an entry point: the model libraries' switches before they load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    return Settings(index_dir=tmp_path_factory.mktemp("index"), reports=[BUNDLED_REPORT], port=free_port())


@pytest.fixture(scope="session")
def torch_embedder(settings):
    from index import Embedder

    return Embedder(settings.resolved_model_path, settings.encoder_threads, "torch", settings.cache_dir)


@pytest.fixture(scope="session")
def onnx_embedder(settings):
    """ONNX Runtime over the export cached in settings.cache_dir (exported on first use, then reused)."""
    from index import Embedder

    return Embedder(settings.resolved_model_path, settings.encoder_threads, "onnx", settings.cache_dir)


@pytest.fixture(scope="session")
def onnx_int8_embedder(settings):
    """The int8 quantized ONNX model (quantized from the cached fp32 export on first use)."""
    from index import Embedder

    return Embedder(settings.resolved_model_path, settings.encoder_threads, "onnx-int8", settings.cache_dir)


@pytest.fixture(scope="session")
def embedder(settings, request):
    """The question encoder the settings choose: the same object as one of the fixtures above."""
    return request.getfixturevalue(f"{settings.encoder_backend.replace('-', '_')}_embedder")


@pytest.fixture(scope="session")
def passage_embedder(settings, request):
    """The encoder ingest uses for passages (``ingest_encoder_backend``)."""
    return request.getfixturevalue(f"{settings.ingest_encoder_backend.replace('-', '_')}_embedder")


@pytest.fixture(scope="session")
def chunker(settings):
    from ingest import Chunker

    return Chunker.from_settings(settings)


@pytest.fixture(scope="session")
def ingested(settings, chunker):
    from ingest import ingest_paths

    result = ingest_paths([BUNDLED_REPORT], chunker)
    assert not result.failures
    return result


@pytest.fixture(scope="session")
def built_index(settings, ingested, passage_embedder):
    from index import build_index

    build_dir, _ = build_index(settings, ingested, passage_embedder)
    return build_dir


@pytest.fixture(scope="session")
def retriever(settings, built_index, embedder):
    from index import open_retriever

    return open_retriever(settings, embedder)


from service.server import BackgroundServer as LiveServer  # noqa: E402  (a real uvicorn in a thread)


@pytest.fixture(scope="session")
def server(settings, built_index, embedder):
    """A real uvicorn server over HTTP on a free port, serving the bundled report's index."""
    from service.app import create_app
    from service.state import load_state

    state = load_state(settings, embedder)
    live = LiveServer(create_app(state), settings.port).start()
    yield live
    live.stop()


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


REPO = PROJECT_ROOT
REPORT_PATH: Path = BUNDLED_REPORT
