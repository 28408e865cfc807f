"""Every route and every bad-input case, against a real uvicorn server over HTTP."""
import json
import os
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from settings import RetrievalMode


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["chunks"] > 50
    client.post("/query", json={"question": "data security"})
    metrics = client.get("/metrics").text
    assert 'reportqa_requests_total{method="POST",route="/query",status="200"}' in metrics
    assert "reportqa_request_seconds_bucket" in metrics
    assert "reportqa_index_chunks" in metrics and "reportqa_model_load_seconds" in metrics


def test_query_response_shape(client):
    body = client.post("/query", json={"question": "How many 5G base stations does China have?", "k": 3}).json()
    assert set(body) == {"question", "mode", "answerable", "confidence", "reasons", "passages", "took_ms"}
    assert body["mode"] == "hybrid" and body["answerable"] is True and len(body["passages"]) == 3
    assert body["reasons"] == []
    top = body["passages"][0]
    assert top["citation"]["section_id"] == "p2.x"
    assert top["highlights"] and "5G base stations" in top["highlights"][0]["text"]
    h = top["highlights"][0]
    assert top["text"][h["start"]:h["end"]] == h["text"]
    e = top["explanation"]
    assert e["dense_rank"] is not None and e["bm25_rank"] is not None and e["fused_score"] == pytest.approx(top["score"], rel=1e-3)


def test_get_query_matches_post(client):
    q = "cross-border data flow pilot free trade zones"
    got = client.get("/query", params={"q": q, "k": 4}).json()
    posted = client.post("/query", json={"question": q, "k": 4}).json()
    assert [p["chunk_id"] for p in got["passages"]] == [p["chunk_id"] for p in posted["passages"]]


@pytest.mark.parametrize("mode", list(RetrievalMode))
def test_modes(client, mode):
    body = client.post("/query", json={"question": "cybercrime cooperation with neighbouring countries", "mode": mode}).json()
    assert body["mode"] == mode and body["passages"]
    assert body["passages"][0]["citation"]["section_id"] == "p2.vi"


def test_section_filter_and_grouping(client):
    body = client.post("/query", json={"question": "data", "k": 10, "section": "p3"}).json()
    assert body["passages"] and all(p["citation"]["section_id"].startswith("p3") for p in body["passages"])
    grouped = client.post("/query", json={"question": "data governance", "k": 5, "group_by_section": True}).json()
    sections = [p["citation"]["section_id"] for p in grouped["passages"]]
    assert len(sections) == 5 and len(set(sections)) == 5


def test_unanswerable_question_is_flagged(client):
    body = client.post("/query", json={"question": "Who won the football world cup in 2022?"}).json()
    assert body["answerable"] is False
    assert any("football" in reason for reason in body["reasons"]), body["reasons"]  # says why


def test_sections_tree_section_and_passage(client):
    tree = client.get("/sections").json()
    top = [s["id"] for s in tree["sections"]]
    assert top == ["opening", "p1", "p2", "p3", "p4"]
    p2 = next(s for s in tree["sections"] if s["id"] == "p2")
    assert [c["id"] for c in p2["children"]][:2] == ["p2.i", "p2.ii"] and len(p2["children"]) == 10
    section = client.get("/sections/p2.iv").json()
    assert section["title"] == "(IV) Enhancing the Protection of Critical Information Infrastructure"
    assert section["label"] == section["title"] and "\n\n" in section["text"]
    for chunk in section["chunks"]:
        shown = section["text"][chunk["text_start"]:chunk["text_end"]]
        assert re.sub(r"\s+", " ", shown) == chunk["text"]
    assert client.get("/sections/opening").json()["label"] == "Opening (untitled)"
    middle = section["chunks"][1]["chunk_id"]
    passage = client.get(f"/passages/{middle}").json()
    assert passage["chunk"]["chunk_id"] == middle
    assert passage["previous"]["chunk_id"] == section["chunks"][0]["chunk_id"]
    assert passage["citation"]["section_id"] == "p2.iv"


def test_documents_lists_what_the_index_holds(client, ingested):
    (doc,) = ingested.documents
    body = client.get("/documents").json()
    listed = dict(body["documents"][0])
    assert len(body["documents"]) == 1 and listed.pop("added_at")  # when the build was made
    assert listed == {
        "id": doc.id, "key": doc.id, "edition": doc.sha256[:12], "current": True, "sha256": doc.sha256,
        "title": doc.title, "source": Path(doc.path).name, "format": "markdown",
        "sections": len(ingested.sections), "chunks": len(ingested.chunks), "pages": None}
    detail = client.get(f"/documents/{doc.id}").json()
    assert detail["editions"] == body["documents"] and detail["edition"] == body["documents"][0]
    assert [s["id"] for s in detail["sections"]] == [s["id"] for s in client.get("/sections").json()["sections"]]


def test_ask_json_is_the_query_body(client, settings):
    """One presenter: `reportqa ask --json` prints what POST /query answers (bar the time it took)."""
    import subprocess
    import sys

    question = "How is critical information infrastructure protected?"
    out = subprocess.run([sys.executable, "-m", "service.cli", "ask", question, "--k", "3", "--json"],
                         capture_output=True, text=True, timeout=180,
                         env={**os.environ, "REPORTQA_INDEX_DIR": str(settings.index_dir)})
    assert out.returncode == 0, out.stderr[-500:]
    cli, api = json.loads(out.stdout), client.post("/query", json={"question": question, "k": 3}).json()
    assert cli.pop("took_ms") >= 0 and api.pop("took_ms") >= 0
    assert cli == api and len(cli["passages"]) == 3
    (doc,) = client.get("/documents").json()["documents"]
    assert {(p["citation"]["document_key"], p["citation"]["edition"]) for p in api["passages"]} == {
        (doc["key"], doc["edition"])}  # every citation names the document and the edition it quotes


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/query" in spec["paths"] and "/sections/{section_id}" in spec["paths"]


BAD_REQUESTS = [
    ({"json": {"question": ""}}, 422, "empty"),
    ({"json": {"question": "   \n\t "}}, 422, "empty"),
    ({"json": {"question": "x" * 1001}}, 422, "longer than 1000"),
    ({"json": {"question": "data", "k": 0}}, 422, "k"),
    ({"json": {"question": "data", "k": 51}}, 422, "k"),
    ({"json": {"question": "data", "k": "many"}}, 422, "k"),
    ({"json": {"question": "data", "mode": "magic"}}, 422, "mode"),
    ({"json": {"question": "data", "section": "p9.zz"}}, 422, "unknown section"),
    ({"json": {"k": 3}}, 422, "question"),
    ({"json": {"question": "data", "colour": "red"}}, 422, "colour"),
    ({"json": ["question"]}, 422, "invalid"),
    ({"content": b'{"question": "data",', "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
    ({"content": b"question=data", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415, "content type"),
    ({"content": b"data", "headers": {"content-type": "text/plain"}}, 415, "content type"),
    ({"content": json.dumps({"question": "a" * 20000}).encode(), "headers": {"content-type": "application/json"}}, 413, "too large"),
]


@pytest.mark.parametrize("kwargs,status,reason", BAD_REQUESTS)
def test_bad_input_gets_a_4xx_with_a_reason(client, kwargs, status, reason):
    response = client.post("/query", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert reason.lower() in json.dumps(body).lower()
    assert "Traceback" not in response.text and "/work/" not in response.text


@pytest.mark.parametrize("path,status", [
    ("/query", 422), ("/query?q=data&k=0", 422), ("/query?q=data&mode=x", 422), ("/query?q=%20", 422),
    ("/sections/nope", 404), ("/sections/..%2F..%2Fetc%2Fpasswd", 404), ("/sections/%2e%2e", 422),
    ("/passages/ffffffffffffffff", 404), ("/passages/not-a-hash", 422), ("/nowhere", 404),
])
def test_bad_get_requests(client, path, status):
    response = client.get(path)
    assert response.status_code == status, response.text
    assert "error" in response.json() and "Traceback" not in response.text


def test_chunked_oversized_body_is_refused(server):
    def body():
        for _ in range(40):
            yield b"x" * 1024

    with httpx.Client(base_url=server.url) as c:
        response = c.post("/query", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_healthz_stays_responsive_while_queries_run(server):
    """Queries run in the thread pool: /healthz never queues behind an encode. Compared by medians in
    the same run (no absolute time limits: shared machines vary)."""
    import statistics

    stop = time.time() + 3
    errors, query_times, health_times = [], [], []

    def hammer(n):
        with httpx.Client(base_url=server.url, timeout=60) as c:
            i = 0
            while time.time() < stop:
                started = time.perf_counter()
                r = c.post("/query", json={"question": f"digital economy cooperation number {n}-{i}"})
                query_times.append(time.perf_counter() - started)
                if r.status_code != 200:
                    errors.append(r.status_code)
                i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        while time.time() < stop:
            started = time.perf_counter()
            assert c.get("/healthz").status_code == 200
            health_times.append(time.perf_counter() - started)
            time.sleep(0.02)
    for t in threads:
        t.join()
    assert not errors and len(health_times) >= 5
    assert statistics.median(health_times) < statistics.median(query_times)
