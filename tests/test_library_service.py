"""The documents API against real uvicorn servers over HTTP, on a library of its own (a temporary index):
list, upload, delete, editions, diff, access control and the refusals, and queries that keep being
answered while the library changes."""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from conftest import LiveServer, free_port

TOKEN = "library-token-51c2"


def serve(settings, embedder, passage_embedder, **overrides):
    """A real server over ``settings`` changed by ``overrides``; its state is kept on the server object."""
    from service.app import create_app
    from service.state import load_state

    own = settings.model_copy(update={"port": free_port(), **overrides})
    state = load_state(own, embedder)
    state.ingest_embedder = passage_embedder  # the session's passage encoder, not a second model load
    live = LiveServer(create_app(state), own.port).start()
    live.state, live.settings = state, own
    return live


@pytest.fixture(scope="module")
def copied_index(settings, built_index, tmp_path_factory) -> Path:
    index_dir = tmp_path_factory.mktemp("library-refusals") / "index"
    shutil.copytree(Path(settings.index_dir), index_dir)
    return index_dir


@pytest.fixture(scope="module")
def open_server(settings, copied_index, embedder, passage_embedder):
    """No token, loopback bind: writes allowed (the machine's own users)."""
    live = serve(settings, embedder, passage_embedder, index_dir=copied_index)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def remote_server(settings, copied_index, embedder, passage_embedder):
    """No token, configured for a non-loopback bind (the socket itself stays on loopback in the test)."""
    live = serve(settings, embedder, passage_embedder, index_dir=copied_index, host="0.0.0.0")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def token_server(settings, copied_index, embedder, passage_embedder):
    live = serve(settings, embedder, passage_embedder, index_dir=copied_index, host="0.0.0.0",
                 api_token=SecretStr(TOKEN), max_upload_bytes=64 * 1024)
    yield live
    live.stop()


def upload(url: str, name: str, content: bytes, headers=None, **fields):
    with httpx.Client(base_url=url, timeout=120, headers=headers) as c:
        return c.post("/documents", files={"file": (name, content)}, data=fields or None)


def assert_refused(response, status: int, words: str):
    assert response.status_code == status, response.text
    body = response.json()
    assert words.lower() in body["error"].lower(), body
    assert "Traceback" not in response.text and "/tmp/" not in response.text


# ------------------------------------------------------------------ refusals (before the library is asked)
def test_writes_refused_without_a_token_on_a_non_loopback_bind(remote_server):
    assert_refused(upload(remote_server.url, "a.md", b"# A\n\nText."), 403, "non-loopback")
    with httpx.Client(base_url=remote_server.url, timeout=30) as c:
        assert_refused(c.delete("/documents/anything"), 403, "REPORTQA_API_TOKEN")
        assert c.get("/documents").status_code == 200  # reading stays open, as before


def test_writes_need_the_token_when_one_is_set(token_server):
    assert_refused(upload(token_server.url, "a.md", b"# A\n\nText."), 401, "bearer token")
    assert_refused(upload(token_server.url, "a.md", b"# A\n\nText.", headers={"authorization": "Bearer nope"}),
                   401, "bearer token")
    with httpx.Client(base_url=token_server.url, timeout=30) as c:
        assert_refused(c.delete("/documents/anything"), 401, "bearer token")


def test_an_upload_over_the_limit_is_413(token_server):
    auth = {"authorization": f"Bearer {TOKEN}"}
    big = b"# Big\n\n" + b"word " * 20_000  # 100 kB > the server's 64 kB limit
    assert_refused(upload(token_server.url, "big.md", big, headers=auth), 413, "too large")

    def chunks():  # no Content-Length: counted as it streams
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.md"\r\n\r\n'
        for _ in range(100):
            yield b"word " * 200
        yield b"\r\n--xyz--\r\n"

    with httpx.Client(base_url=token_server.url, timeout=60) as c:
        response = c.post("/documents", content=chunks(),
                          headers={**auth, "content-type": "multipart/form-data; boundary=xyz"})
    assert_refused(response, 413, "too large")


@pytest.mark.parametrize("name,content,status,words", [
    ("report.docx", b"PK\x03\x04 not a report", 415, "unsupported file type .docx"),
    ("report", b"# Title\n\nText.", 415, "unsupported file type (none)"),
    ("report.pdf", b"# not a pdf at all", 422, "not a PDF"),
    ("report.md", b"", 422, "empty"),
    ("report.txt", b"\x00\x01\x02binary", 422, "binary"),
    ("", b"# Title\n\nText.", 422, "file"),
])
def test_bad_uploads_get_a_reason(open_server, name, content, status, words):
    response = upload(open_server.url, name, content)
    assert_refused(response, status, words)


def test_an_upload_must_be_a_multipart_form_with_a_file(open_server):
    with httpx.Client(base_url=open_server.url, timeout=30) as c:
        assert_refused(c.post("/documents", content=b"# A", headers={"content-type": "text/markdown"}),
                       415, "multipart/form-data")
        assert_refused(c.post("/documents", data={"key": "x"}, files={"other": ("a.md", b"# A")}), 422,
                       "field named 'file'")


# ------------------------------------------------------------------ the CURRENT watcher
def test_a_new_build_is_served_without_a_reload_call_and_without_a_dropped_request(
        settings, built_index, ingested, embedder, passage_embedder, tmp_path):
    """Another process (`reportqa add`, `ingest`) switches CURRENT: the server notices within a poll and
    swaps the build while clients keep asking; every request is answered."""
    from index import build_index

    index_dir = tmp_path / "index"
    shutil.copytree(Path(settings.index_dir), index_dir)
    live = serve(settings, embedder, passage_embedder, index_dir=index_dir, reload_poll_s=0.1)
    stop, statuses, failures, builds = threading.Event(), [], [], set()

    def client(n):
        with httpx.Client(base_url=live.url, timeout=60) as c:
            i = 0
            while not stop.is_set():
                try:
                    statuses.append(c.post("/query", json={"question": f"data security {n} {i % 5}", "k": 2}).status_code)
                    builds.add(c.get("/readyz").json()["index_build"])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    try:
        before = live.state.build_name
        for t in threads:
            t.start()
        new_dir, _ = build_index(live.settings, ingested, passage_embedder)
        deadline = time.time() + 30
        while live.state.build_name != new_dir.name and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a few requests on the new build too
    finally:
        stop.set()
        for t in threads:
            t.join()
        live.stop()
    assert live.state.build_name == new_dir.name != before
    assert not failures, failures[:3]
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert builds == {before, new_dir.name}
