"""The documents API against real uvicorn servers over HTTP, on a library of its own (a temporary index):
list, upload, delete, editions, diff, access control and the refusals, and queries that keep being
answered while the library changes."""
from __future__ import annotations

import hashlib
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from library_samples import RIVER, RIVER_NEXT, TRANSIT, edition_of, pdf_with_blank_pages, report, serve

TOKEN = "library-token-51c2"


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




# ------------------------------------------------------------------ a library of its own
@pytest.fixture(scope="module")
def library(settings, embedder, passage_embedder, tmp_path_factory):
    """Two small reports added with the library (what `reportqa add` does), served by a real server."""
    from index.library import Library

    folder = tmp_path_factory.mktemp("library-reports")
    (folder / "river-quality.md").write_bytes(report("River Water Quality Review", RIVER))
    (folder / "urban-transit.md").write_bytes(report("Urban Transit Plan", TRANSIT))
    index_dir = tmp_path_factory.mktemp("library") / "index"
    own = settings.model_copy(update={"index_dir": index_dir})
    change = Library(own, embedder=passage_embedder).add([folder])
    assert not change.failures and len(change.added) == 2
    live = serve(settings, embedder, passage_embedder, index_dir=index_dir, reload_poll_s=0.1)
    live.folder = folder
    yield live
    live.stop()


def get(live, path, **params):
    with httpx.Client(base_url=live.url, timeout=60) as c:
        return c.get(path, params=params)


def documents(live) -> dict[str, list[dict]]:
    """key -> its editions as GET /documents lists them."""
    body = get(live, "/documents").json()
    out: dict[str, list[dict]] = {}
    for d in body["documents"]:
        out.setdefault(d["key"], []).append(d)
    return out


def ask(live, question, **fields):
    with httpx.Client(base_url=live.url, timeout=60) as c:
        return c.post("/query", json={"question": question, **fields})


def test_documents_lists_every_document_with_its_edition(library):
    listed = documents(library)
    assert {"river-quality", "urban-transit"} <= set(listed)
    (river,) = listed["river-quality"]
    content = (library.folder / "river-quality.md").read_bytes()
    assert river["edition"] == edition_of(content) and river["sha256"] == hashlib.sha256(content).hexdigest()
    assert river["current"] is True and river["source"] == "river-quality.md" and river["format"] == "markdown"
    assert river["title"] == "River Water Quality Review" and river["chunks"] >= 4 and river["sections"] >= 4
    assert river["added_at"].endswith("Z") and river["pages"] is None


def test_document_detail_has_its_editions_and_sections(library):
    body = get(library, "/documents/urban-transit").json()
    assert body["key"] == "urban-transit" and [e["edition"] for e in body["editions"]] == [body["edition"]["edition"]]
    titles = [n["title"] for root in body["sections"] for n in [root, *root["children"]]]
    assert any("Bus network" in t for t in titles) and any("Cycling" in t for t in titles)
    assert all("Nitrate" not in t for t in titles)  # only this document's sections
    assert_refused(get(library, "/documents/no-such-report"), 404, "unknown document")
    assert get(library, "/documents/bad key!").status_code in (404, 422)
    assert_refused(get(library, "/documents/urban-transit", edition="zz"), 422, "edition")
    assert_refused(get(library, "/documents/urban-transit", edition="abcdef"), 404, "no edition 'abcdef'")


def test_every_citation_names_document_key_and_edition(library):
    body = ask(library, "How often do night buses run?", k=3).json()
    edition = edition_of((library.folder / "urban-transit.md").read_bytes())
    top = body["passages"][0]["citation"]
    assert top["document_key"] == "urban-transit" and top["edition"] == edition
    assert all(p["citation"]["document_key"] and len(p["citation"]["edition"]) == 12 for p in body["passages"])


def test_upload_appears_is_searchable_and_a_second_upload_is_a_no_op(library, tmp_path):
    content = report("Coastal Erosion Survey", [
        ("1 Cliffs", "Chalk cliffs retreated by two metres after the winter storms. Landslips closed the coast path."),
        ("2 Beaches", "Shingle was moved onto the beaches to protect the sea wall. Groynes were repaired."),
    ])
    response = upload(library.url, "coastal-erosion.md", content)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["added"] is True and body["document"]["key"] == "coastal-erosion"
    assert body["document"]["edition"] == edition_of(content)
    assert body["build"] == get(library, "/readyz").json()["index_build"]  # served before the answer came
    assert "coastal-erosion" in documents(library)
    hits = ask(library, "How far did the chalk cliffs retreat?", k=3, document="coastal-erosion").json()
    assert hits["passages"] and hits["passages"][0]["citation"]["document_key"] == "coastal-erosion"
    assert "Chalk cliffs" in hits["passages"][0]["text"]
    again = upload(library.url, "coastal-erosion.md", content)
    assert again.status_code == 200 and again.json()["added"] is False
    assert again.json()["build"] == body["build"]  # nothing was built

    notes = report("Coastal Erosion Notes", [("1 Dunes", "Marram grass was planted to hold the dunes.")])
    keyed = upload(library.url, "notes.md", notes, key="dune-notes")
    assert keyed.status_code == 201 and keyed.json()["document"]["key"] == "dune-notes", keyed.text
    assert keyed.json()["document"]["source"] == "notes.md"
    assert_refused(upload(library.url, "more.md", notes + b"\nMore.", key="bad key!"), 422, "bad document key")


def test_an_upload_with_unreadable_pdf_pages_is_added_with_a_warning(library):
    content = pdf_with_blank_pages("Ferry Timetable Review", ["Night ferries were cut to two a week.", "", "",
                                                              "Fares rose for cars but not for foot passengers."],
                                   blank={2, 3})
    response = upload(library.url, "ferry-review.pdf", content)
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == [
        "2 of 4 pages have no extractable text (pages 2-3): they cannot be searched (scanned images need OCR; "
        "fonts without a text map, another export)"]
    plain = upload(library.url, "ferry-notes.md", report("Ferry Notes", [("1 Boats", "Two boats were sold.")]))
    assert plain.status_code == 201 and plain.json()["warnings"] == []


def test_a_new_edition_keeps_the_old_one_queryable_and_the_diff_lists_the_three_changes(library, tmp_path):
    old_content = (library.folder / "river-quality.md").read_bytes()
    new_content = report("River Water Quality Review", RIVER_NEXT)
    old, new = edition_of(old_content), edition_of(new_content)
    response = upload(library.url, "river-quality.md", new_content)
    assert response.status_code == 201 and response.json()["document"]["current"] is True, response.text
    editions = documents(library)["river-quality"]
    assert [(e["edition"], e["current"]) for e in editions] == [(old, False), (new, True)]

    question = "What happened to nitrate concentrations?"
    current = ask(library, question, k=3, document="river-quality").json()["passages"]
    assert current and {p["citation"]["edition"] for p in current} == {new}
    older = ask(library, question, k=3, document="river-quality", edition=old).json()["passages"]
    assert older and {p["citation"]["edition"] for p in older} == {old}
    assert "fell" in older[0]["text"] and "rose" in current[0]["text"]  # each edition cites its own text
    whole = ask(library, question, k=10).json()["passages"]
    assert old not in {p["citation"]["edition"] for p in whole}  # the library searches current editions
    with httpx.Client(base_url=library.url, timeout=60) as c:
        linked = c.get("/query", params={"q": question, "k": 3, "document": "river-quality", "edition": old}).json()
    assert [p["chunk_id"] for p in linked["passages"]] == [p["chunk_id"] for p in older]

    diff = get(library, "/documents/river-quality/diff").json()
    assert (diff["from_edition"], diff["to_edition"]) == (old, new)
    assert [c["new"]["title"] for c in diff["added"]] == ["5 Groundwater"]
    assert [c["old"]["title"] for c in diff["removed"]] == ["3 Phosphate levels"]
    assert [c["new"]["title"] for c in diff["changed"]] == ["2 Nitrate levels"]
    assert 0 < diff["changed"][0]["similarity"] < 1 and diff["moved"] == []
    explicit = get(library, "/documents/river-quality/diff", **{"from": old, "to": new}).json()
    assert explicit == diff
    backwards = get(library, "/documents/river-quality/diff", **{"from": new, "to": old}).json()
    assert [c["new"]["title"] for c in backwards["added"]] == ["3 Phosphate levels"]
    assert [c["old"]["title"] for c in backwards["removed"]] == ["5 Groundwater"]

    assert_refused(ask(library, question, document="river-quality", edition="abcdef"), 404, "edition")
    assert_refused(ask(library, question, document="no-such-report"), 404, "unknown document")
    assert_refused(ask(library, question, edition="not-hex"), 422, "edition")
    assert_refused(get(library, "/documents/river-quality/diff", to="abcdef"), 404, "edition")
    assert_refused(get(library, "/documents/urban-transit/diff"), 422, "no edition before")
    assert_refused(get(library, "/documents/nothing-here/diff"), 404, "unknown document")
    with httpx.Client(base_url=library.url, timeout=60) as c:
        assert_refused(c.get("/query", params={"q": question, "edition": "xyz"}), 422, "edition")


def test_delete_removes_a_document_and_says_when_there_is_none(library):
    content = report("Street Lighting Audit", [
        ("1 Lamps", "Sodium lamps were replaced by dimmable LED lanterns on residential streets."),
    ])
    assert upload(library.url, "street-lighting.md", content).status_code == 201
    with httpx.Client(base_url=library.url, timeout=60) as c:
        response = c.delete("/documents/street-lighting")
        assert response.status_code == 200, response.text
        assert response.json()["removed"] == [edition_of(content)]
        assert response.json()["build"] == c.get("/readyz").json()["index_build"]
        assert "street-lighting" not in documents(library)
        assert_refused(ask(library, "LED lanterns", document="street-lighting"), 404, "unknown document")
        assert all("LED" not in p["text"] for p in ask(library, "dimmable LED lanterns", k=10).json()["passages"])
        assert_refused(c.delete("/documents/street-lighting"), 404, "unknown document")
        assert_refused(c.delete("/documents/river-quality@abcdef123456"), 404, "edition")


def test_queries_during_an_upload_are_all_answered(library):
    """Clients keep asking while a report is uploaded, embedded and swapped in: no request fails."""
    stop, statuses, failures, builds = threading.Event(), [], [], set()

    def client(n):
        with httpx.Client(base_url=library.url, timeout=60) as c:
            i = 0
            while not stop.is_set():
                try:
                    r = c.post("/query", json={"question": f"bus corridors and cycle lanes {n} {i % 4}", "k": 2})
                    statuses.append(r.status_code)
                    builds.add(c.get("/readyz").json()["index_build"])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        content = report("Harbour Dredging Notice", [
            ("1 Channel", "The harbour channel will be dredged to nine metres for larger ferries."),
            ("2 Spoil", "Dredged silt will be tested and placed on the salt marsh restoration site."),
        ])
        response = upload(library.url, "harbour-dredging.md", content)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert response.status_code == 201, response.text
    assert not failures, failures[:3]
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert response.json()["build"] in builds and len(builds) >= 2


def test_a_change_by_another_writer_is_served_within_a_poll(library, passage_embedder, tmp_path):
    """`reportqa add` in another process switches CURRENT: the server swaps the new build in by itself."""
    from index.library import Library

    path = tmp_path / "wind-farm.md"
    path.write_bytes(report("Offshore Wind Farm Consent", [
        ("1 Turbines", "Sixty turbines will stand twelve kilometres off the headland."),
    ]))
    before = library.state.build_name
    change = Library(library.settings, embedder=passage_embedder).add([path])
    deadline = time.time() + 30
    while library.state.build_name == before and time.time() < deadline:
        time.sleep(0.05)
    assert library.state.build_name == change.build != before
    assert "wind-farm" in documents(library)


def test_upload_and_delete_on_milvus_lite(settings, embedder, passage_embedder, tmp_path):
    """The same routes on the Milvus backend (Milvus Lite in this process, shared with the server's own
    client): the upload is upserted and searchable, the delete takes its rows out."""
    from index.library import Library

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "river-quality.md").write_bytes(report("River Water Quality Review", RIVER))
    own = settings.model_copy(update={"index_dir": tmp_path / "index", "backend": "milvus",
                                      "milvus_collection": "library_service"})
    assert Library(own, embedder=passage_embedder).add([tmp_path / "reports"]).added
    live = serve(own, embedder, passage_embedder)
    try:
        content = report("Urban Transit Plan", TRANSIT)
        response = upload(live.url, "urban-transit.md", content)
        assert response.status_code == 201, response.text
        hits = ask(live, "How often do the night buses run?", k=2, document="urban-transit").json()["passages"]
        assert hits and {p["citation"]["edition"] for p in hits} == {edition_of(content)}
        with httpx.Client(base_url=live.url, timeout=120) as c:
            assert c.delete("/documents/urban-transit").status_code == 200
        keys = {p["citation"]["document_key"] for p in ask(live, "night buses and cycle lanes", k=5).json()["passages"]}
        assert keys == {"river-quality"}
        assert live.state.retriever.index.manifest["backend"] == "milvus"
    finally:
        live.stop()
