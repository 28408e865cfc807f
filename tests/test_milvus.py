"""The Milvus backend (issue 7) on Milvus Lite, in process, no mocks: the same retrieval and service as FAISS,
filters as Milvus expressions, incremental upserts/deletes, and a manifest that names the collection.

Builds reuse the vectors the session's FAISS build computed (a text -> vector memo in front of the real model),
so a Milvus build costs seconds, not another embedding pass."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import LiveServer, free_port
from test_walking_skeleton import OBVIOUS

from index import IndexUnavailable, Query, UnknownDocument, build_index, load_current_index, open_retriever
from index.backends import ChunkFilter, convert
from index.backends.milvus import (
    MilvusTarget, chunk_row, connect, count_rows, filter_expression, resolve_uri, sanitise_uri,
)
from settings import RetrievalMode


class MemoEmbedder:
    """The real embedder behind a memo of vectors it already produced (texts it has not seen are embedded)."""

    def __init__(self, embedder, memo: dict[str, np.ndarray]):
        self.embedder, self.memo, self.encoded = embedder, memo, 0

    def __getattr__(self, name):
        return getattr(self.embedder, name)

    def encode(self, texts, batch_size=32, progress=None):
        missing = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if missing:
            for t, v in zip(missing, self.embedder.encode(missing, batch_size)):
                self.memo[t] = v
            self.encoded += len(missing)
        if progress:
            progress(len(texts), len(texts))
        return np.vstack([self.memo[t] for t in texts]).astype(np.float32)


@pytest.fixture(scope="module")
def memo_embedder(passage_embedder, retriever):
    """The passage encoder (the build's precision) behind the session build's own vectors."""
    loaded = retriever.index
    memo = {}
    vectors = loaded.backend.dense.index.reconstruct_n(0, loaded.backend.size)
    for chunk, vector in zip(loaded.chunks, vectors):
        memo[chunk.embed_text] = vector
    for i, chunk in enumerate(loaded.chunks):
        a = loaded.sentence_offsets[i]
        for j, s in enumerate(chunk.sentences):
            memo[chunk.text[s.text_start:s.text_end]] = np.asarray(loaded.sentence_vectors[a + j], dtype=np.float32)
    return MemoEmbedder(passage_embedder, memo)


@pytest.fixture(scope="module")
def milvus_settings(settings, tmp_path_factory):
    return settings.model_copy(update={"index_dir": tmp_path_factory.mktemp("milvus-index"), "backend": "milvus"})


@pytest.fixture(scope="module")
def milvus_build(milvus_settings, ingested, memo_embedder):
    build_dir, timings = build_index(milvus_settings, ingested, memo_embedder)
    assert memo_embedder.encoded == 0  # every vector came from the FAISS build
    return build_dir


@pytest.fixture(scope="module")
def milvus_retriever(milvus_settings, milvus_build, embedder):
    return open_retriever(milvus_settings, embedder)


@pytest.fixture(params=["faiss", "milvus"])
def any_retriever(request, retriever, milvus_retriever):
    return retriever if request.param == "faiss" else milvus_retriever


# ------------------------------------------------------------------ the build


def test_manifest_names_backend_and_collection(milvus_settings, milvus_build, ingested):
    manifest = json.loads((milvus_build / "manifest.json").read_text())
    chunks = len({c.id for c in ingested.chunks})
    assert manifest["backend"] == "milvus" and manifest["collection"] == "reportqa"
    assert manifest["uri"] == "milvus.db"  # inside the index folder: recorded relative to it
    assert manifest["milvus"]["rows"] == chunks and manifest["milvus"]["index_type"] == "FLAT"
    assert manifest["dense"] == {"kind": "flat", "count": chunks, "metric": "inner_product", "engine": "milvus"}
    files = set(manifest["files"])
    assert {"chunks.jsonl", "sentences.npy", "sections.json", "vocabulary.json"} <= files
    assert "dense.faiss" not in files and not any(f.startswith("bm25/") for f in files)
    assert (Path(milvus_settings.index_dir) / "milvus.db").is_dir()


def test_collection_holds_each_chunk_with_its_citation(milvus_settings, milvus_build, ingested):
    target = MilvusTarget.from_settings(milvus_settings)
    client = connect(target)
    assert count_rows(client, "reportqa") == len({c.id for c in ingested.chunks})
    chunk = next(c for c in ingested.chunks if c.section_id == "p2.iv")
    row = client.get("reportqa", ids=[chunk.id], output_fields=[
        "document_id", "section_id", "section_title", "section_path", "ordinal", "char_start", "char_end", "page", "text"])[0]
    assert (row["document_id"], row["section_id"], row["section_title"]) == (chunk.document_id, chunk.section_id,
                                                                              chunk.section_title)
    assert list(row["section_path"]) == list(chunk.section_path) and row["text"] == chunk.text
    assert (row["ordinal"], row["char_start"], row["char_end"], row["page"]) == (chunk.ordinal, chunk.char_start,
                                                                                 chunk.char_end, None)
    # The BM25 function's input is the product's own analysis of the embedded text.
    index = client.describe_index("reportqa", "sparse_idx")
    assert index["metric_type"] == "BM25"
    assert index["params"] == {"bm25_k1": milvus_settings.bm25_k1, "bm25_b": milvus_settings.bm25_b}


def test_uris_never_record_credentials(tmp_path):
    assert sanitise_uri("https://root:Milvus@milvus.example:19530/db?token=abc#x") == "https://milvus.example:19530/db"
    assert sanitise_uri("http://10.0.0.5:19530") == "http://10.0.0.5:19530"
    assert sanitise_uri(str(tmp_path / "m.db"), tmp_path) == "m.db"
    assert resolve_uri("m.db", tmp_path) == str((tmp_path / "m.db").resolve())
    assert resolve_uri("", tmp_path) == str((tmp_path / "milvus.db").resolve())
    target = MilvusTarget("http://u:p@host:19530", "c", token="secret")
    assert "secret" not in repr(target) and "u:p" not in target.describe()


# ------------------------------------------------------------------ retrieval, both backends


@pytest.mark.parametrize("question,section", OBVIOUS)
def test_obvious_questions_cite_the_same_sections(any_retriever, question, section):
    for mode in RetrievalMode:
        hits = any_retriever.search(Query(question, k=5, mode=mode)).hits
        assert len(hits) == 5
        if mode == "hybrid":
            assert hits[0].chunk.section_id == section


def test_backends_rank_alike(retriever, milvus_retriever):
    """Same chunks, same vectors, same BM25 terms and k1/b: dense and BM25 agree exactly (exact search both
    sides), and the engine's RRF gives the in-process fusion's order."""
    from index.analysis import expand_acronyms

    for question, _ in OBVIOUS + [("data security law", None), ("AI governance", None)]:
        qv = retriever.encode(expand_acronyms(question, retriever.index.acronyms))  # once for both backends
        for mode in RetrievalMode:
            a = retriever.search(Query(question, k=10, mode=mode), qv).hits
            b = milvus_retriever.search(Query(question, k=10, mode=mode), qv).hits
            assert [h.chunk.id for h in a] == [h.chunk.id for h in b], (question, mode)
            for x, y in zip(a, b):
                assert x.explanation.dense_score == pytest.approx(y.explanation.dense_score, abs=1e-4)
                if x.explanation.bm25_rank is not None:
                    assert x.explanation.bm25_score == pytest.approx(y.explanation.bm25_score, rel=1e-4)


@pytest.mark.parametrize("section", ["p2", "p3", "p2.iv", "opening"])
def test_section_filters_become_milvus_expressions(milvus_retriever, section):
    """The engine's filter selects exactly the chunks the retriever's own mask does."""
    expr = filter_expression(ChunkFilter(section=section))
    assert expr == f'(section_id == "{section}" or section_id like "{section}.%")'
    client = milvus_retriever.index.backend.client
    rows = client.query("reportqa", filter=expr, output_fields=["id"], limit=1000)
    allowed = milvus_retriever.chunk_filter(Query("x", section=section)).allowed
    assert {r["id"] for r in rows} == {milvus_retriever.index.chunks[i].id for i in allowed}


def test_filters_and_grouping(any_retriever):
    for mode in RetrievalMode:
        hits = any_retriever.search(Query("data", k=10, mode=mode, section="p3")).hits
        assert hits and all(h.chunk.section_id == "p3" or h.chunk.section_id.startswith("p3.") for h in hits)
    doc = any_retriever.index.chunks[0].document_id
    assert any_retriever.search(Query("data", k=3, document=doc)).hits
    with pytest.raises(UnknownDocument, match="unknown document 'no-such-document'"):  # the service answers 404
        any_retriever.search(Query("data", k=3, document="no-such-document"))
    grouped = any_retriever.search(Query("data governance", k=5, group_by_section=True)).hits
    sections = [h.chunk.section_id for h in grouped]
    assert len(sections) == 5 and len(set(sections)) == 5


def test_no_answer_signal_matches(retriever, milvus_retriever):
    for question in ("Who won the football world cup in 2022?", "How does China combat cybercrime?"):
        a, b = retriever.search(Query(question)), milvus_retriever.search(Query(question))
        assert a.answerable == b.answerable
        assert a.features == pytest.approx(b.features, abs=1e-4)


# ------------------------------------------------------------------ ingest: upserts and deletes


class Spy:
    """Counts the rows the client really upserts and deletes (the calls go through)."""

    def __init__(self, client, monkeypatch):
        self.upserted, self.deleted = 0, 0
        upsert, delete = client.upsert, client.delete

        def counted_upsert(name, data, **kw):
            self.upserted += len(data)
            return upsert(name, data, **kw)

        def counted_delete(name, ids=None, **kw):
            self.deleted += len(ids or [])
            return delete(name, ids=ids, **kw)

        monkeypatch.setattr(client, "upsert", counted_upsert)
        monkeypatch.setattr(client, "delete", counted_delete)


def test_reingest_upserts_changed_chunks_and_deletes_gone_ones(settings, ingested, memo_embedder, embedder, tmp_path,
                                                               monkeypatch, chunker):
    from ingest import ingest_paths
    from settings import BUNDLED_REPORT

    s = settings.model_copy(update={"index_dir": tmp_path / "idx", "backend": "milvus",
                                    "milvus_collection": "reportqa_sync"})
    build_index(s, ingested, memo_embedder)
    client = connect(MilvusTarget.from_settings(s))
    spy = Spy(client, monkeypatch)

    # Unchanged report: nothing written.
    build_dir, _ = build_index(s, ingested, memo_embedder)
    sync = json.loads((build_dir / "manifest.json").read_text())["milvus"]
    assert (sync["upserted"], sync["deleted"], sync["created"]) == (0, 0, False)
    assert (spy.upserted, spy.deleted) == (0, 0)

    # Changed report: one word replaced (same length, so no other offsets move), the last part cut off.
    text = BUNDLED_REPORT.read_text()
    cut = text.index("PART 4")
    edited = text[:cut].replace("Domestically, to enhance the protection", "Zyxwvutsrqpo, to enhance the protection", 1)
    assert edited != text[:cut] and len(edited) == cut
    report = tmp_path / BUNDLED_REPORT.name
    report.write_text(edited)
    changed = ingest_paths([report], chunker)
    old = {c.id: c for c in ingested.chunks}
    new = {c.id: c for c in changed.chunks}
    fingerprint = memo_embedder.fingerprint

    def row_hash(c):
        return chunk_row(c, [], fingerprint)["row_hash"]

    want_upserts = sum(1 for cid, c in new.items() if cid not in old or row_hash(c) != row_hash(old[cid]))
    want_deletes = len(set(old) - set(new))
    assert 1 <= want_upserts <= 3 and want_deletes >= 2

    build_dir, _ = build_index(s, changed, memo_embedder)
    sync = json.loads((build_dir / "manifest.json").read_text())["milvus"]
    assert (sync["upserted"], sync["deleted"]) == (want_upserts, want_deletes)
    assert (spy.upserted, spy.deleted) == (want_upserts, want_deletes)
    assert count_rows(client, "reportqa_sync") == len(new)

    loaded = load_current_index(s)
    r = open_retriever(s, embedder, loaded)
    hit = r.search(Query("Zyxwvutsrqpo", k=1, mode="bm25")).hits[0]
    assert hit.chunk.section_id == "p2.iv" and "Zyxwvutsrqpo" in hit.chunk.text
    assert not any(c.section_id.startswith("p4") for c in loaded.chunks)

    # A collection that no longer matches the build is refused at load, with the reason.
    client.delete("reportqa_sync", ids=[next(iter(new))])
    with pytest.raises(IndexUnavailable, match=r"holds \d+ rows"):
        load_current_index(s)


def test_closing_one_retriever_leaves_the_shared_client_to_the_others(milvus_settings, milvus_build,
                                                                     milvus_retriever, embedder):
    second = open_retriever(milvus_settings, embedder)
    before = [h.chunk.id for h in second.search(Query("data security", k=3)).hits]
    second.close()
    second.close()  # a second close is a no-op
    # Both retrievers talk through the URI's one client; the one still open keeps it and searches as before.
    assert [h.chunk.id for h in milvus_retriever.search(Query("data security", k=3)).hits] == before
    assert milvus_retriever.index.backend.client is connect(milvus_retriever.index.backend.target)


def test_ingest_if_stale_sees_a_backend_change(settings, built_index, ingested, milvus_build, milvus_settings):
    from index.embed import model_fingerprint
    from index.store import BuildSettings, stale_reasons

    args = (ingested.documents, BuildSettings.from_settings(settings), model_fingerprint(settings.resolved_model_path))
    assert stale_reasons(Path(settings.index_dir), *args, backend="faiss") == []
    assert stale_reasons(Path(settings.index_dir), *args, backend="milvus") == ["backend changed to milvus"]
    assert stale_reasons(Path(milvus_settings.index_dir), *args, backend="milvus", collection="reportqa") == []
    assert stale_reasons(Path(milvus_settings.index_dir), *args, backend="milvus", collection="other") == [
        "milvus collection changed to other"]


# ------------------------------------------------------------------ service over HTTP on the Milvus index


@pytest.fixture(scope="module")
def milvus_client(milvus_settings, milvus_build, embedder):
    from service.app import create_app
    from service.state import load_state

    state = load_state(milvus_settings, embedder)
    assert state.retriever.index.backend.kind == "milvus"
    # A port chosen now, not when the settings were: Milvus Lite, started since, takes ephemeral ports too
    live = LiveServer(create_app(state), free_port()).start()
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client
    live.stop()


def test_service_on_milvus_cites_passages(milvus_client, ingested):
    ready = milvus_client.get("/readyz").json()
    assert ready["ready"] is True and ready["chunks"] == len(ingested.chunks)
    for question, section in OBVIOUS:
        body = milvus_client.post("/query", json={"question": question, "k": 5}).json()
        assert [p["citation"]["section_id"] for p in body["passages"]][0] == section
        scores = [p["score"] for p in body["passages"]]
        assert scores == sorted(scores, reverse=True)
    body = milvus_client.post("/query", json={"question": "How many 5G base stations does China have?", "k": 3}).json()
    top = body["passages"][0]
    assert body["answerable"] is True and top["citation"]["section_id"] == "p2.x"
    assert top["highlights"] and "5G base stations" in top["highlights"][0]["text"]
    e = top["explanation"]
    assert e["dense_rank"] is not None and e["bm25_rank"] is not None
    assert e["fused_score"] == pytest.approx(top["score"], rel=1e-3)
    doc = ingested.documents[0]
    c = top["citation"]
    assert doc.text[c["char_start"]:c["char_end"]].split()[-1] in top["text"]


def test_service_on_milvus_filters_and_groups(milvus_client):
    body = milvus_client.post("/query", json={"question": "data", "k": 10, "section": "p3"}).json()
    assert body["passages"] and all(re.match(r"p3(\.|$)", p["citation"]["section_id"]) for p in body["passages"])
    grouped = milvus_client.post("/query", json={"question": "data governance", "k": 5, "group_by_section": True}).json()
    assert len({p["citation"]["section_id"] for p in grouped["passages"]}) == 5
    assert milvus_client.post("/query", json={"question": "data", "section": "p9"}).status_code in (404, 422)
    assert milvus_client.post("/query", json={"question": "Who won the football world cup in 2022?"}).json()[
        "answerable"] is False


# ------------------------------------------------------------------ eval: one build on both backends


def test_eval_on_both_backends_agrees(settings, retriever, embedder, tmp_path):
    from eval.backend_views import backend_views, format_backends_table
    from eval.harness import evaluate_mode, load_questions

    s = settings.model_copy(update={"milvus_uri": str(tmp_path / "eval.db")})
    views = backend_views(s, ["faiss", "milvus"])
    assert views["faiss"] is not views["milvus"] and views["milvus"].backend.kind == "milvus"
    questions = [q for q in load_questions() if q.type in ("fact", "typo", "acronym", "unanswerable")][:30]
    reports = {}
    for name, loaded in views.items():
        report, _ = evaluate_mode(open_retriever(s, embedder, loaded), questions, "hybrid")
        reports[name] = [report]
    for metric in ("hit@1", "mrr@10", "ndcg@10"):
        assert abs(reports["milvus"][0].metrics[metric] - reports["faiss"][0].metrics[metric]) <= 0.02
    table = format_backends_table(reports, len(questions))
    assert "faiss" in table and "milvus" in table and "Δ milvus" in table
    # Built once: a second view over the same build writes nothing.
    _, again = convert(views["faiss"], "milvus", replace(views["milvus"].backend.target), s.exact_search_max)
    assert (again.upserted, again.deleted) == (0, 0)


def test_a_milvus_build_runs_on_faiss_too(milvus_settings, milvus_build, retriever, embedder):
    """The other direction: vectors read back from the collection, FAISS + bm25s built in memory."""
    from eval.backend_views import backend_views

    views = backend_views(milvus_settings, ["milvus", "faiss"])
    assert views["milvus"].backend.kind == "milvus" and views["faiss"].backend.kind == "faiss"
    rebuilt = open_retriever(milvus_settings, embedder, views["faiss"])
    for question, section in OBVIOUS[:3]:
        a = retriever.search(Query(question, k=5)).hits
        b = rebuilt.search(Query(question, k=5)).hits
        assert [h.chunk.id for h in a] == [h.chunk.id for h in b] and b[0].chunk.section_id == section
