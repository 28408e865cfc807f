"""The library (issue 16): add, remove and no-op changes as new builds that leave untouched documents' chunk ids
and vectors exactly as they were, editions with a section diff and citations that resolve to their own text,
kill -9 at several points of an add, the writer lock, and the same results on Milvus Lite.

Real model, real FAISS and Milvus Lite. Each test works on a copy of the session's index of the bundled
report; the library seeds its embedding cache from that build, so only the tiny documents and changed
sections are embedded (by the session's passage embedder)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPORT_PATH

from index import Query, UnknownDocument, load_current_index, open_retriever
from index.catalog import LibraryError
from index.files import FAILPOINT_ENV
from index.library import Library, LibraryBusy, writer_lock_for
from index.store import current_build, load_index
from settings import RetrievalMode

QUESTIONS = ("How is critical information infrastructure protected?", "What did China do about cybercrime?",
             "data security governance", "How many 5G base stations has China built?")
HARBOUR = "# Harbour Note\n\n## 1 Ships\n\nThe harbour handled four hundred ships in the year.\n\n" \
          "## 2 Cranes\n\nTwelve new cranes were installed along the east quay. They lift forty tonnes each.\n"
ORCHARD = "# Orchard Note\n\n## 1 Trees\n\nThe orchard planted nine hundred apple trees on the hill.\n"


def copy_index(settings, tmp_path: Path, **overrides):
    target = tmp_path / "index"
    shutil.copytree(settings.index_dir, target, ignore=shutil.ignore_patterns(".writer.lock", "embeddings"))
    return settings.model_copy(update={"index_dir": target, **overrides})


def tiny_docs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "harbour-note.md").write_text(HARBOUR)
    (folder / "orchard-note.md").write_text(ORCHARD)
    return [folder / "harbour-note.md", folder / "orchard-note.md"]


def vectors_by_id(loaded) -> dict[str, np.ndarray]:
    return dict(zip((c.id for c in loaded.chunks), loaded.backend.vectors()))


def sentences_by_id(loaded) -> dict[str, np.ndarray]:
    return {c.id: np.asarray(loaded.sentence_vectors[loaded.sentence_offsets[i]:loaded.sentence_offsets[i + 1]])
            for i, c in enumerate(loaded.chunks)}


def dense_ids(settings, embedder, k=5, **query) -> dict[str, list[str]]:
    retriever = open_retriever(settings, embedder)
    try:
        return {q: [h.chunk.id for h in retriever.search(Query(q, k, RetrievalMode.DENSE, **query)).hits]
                for q in QUESTIONS}
    finally:
        retriever.close()


@pytest.fixture()
def lib_settings(settings, built_index, tmp_path):
    return copy_index(settings, tmp_path)


def test_add_noop_remove_keep_untouched_ids_and_vectors(lib_settings, passage_embedder, embedder, tmp_path):
    before = load_current_index(lib_settings)
    ids, vectors, sentences = [c.id for c in before.chunks], vectors_by_id(before), sentences_by_id(before)
    before.close()
    dense_before = dense_ids(lib_settings, embedder)
    library = Library(lib_settings, embedder=passage_embedder)

    change = library.add(tiny_docs(tmp_path / "docs"))
    assert [r.key for r in change.added] == ["harbour-note", "orchard-note"] and change.build
    assert change.embedded == {"chunks": 3, "sentences": 4}  # only the new documents' texts
    assert change.reused["chunks"] == len(ids)
    after = load_current_index(lib_settings)
    assert [c.id for c in after.chunks][:len(ids)] == ids
    new_vectors, new_sentences = vectors_by_id(after), sentences_by_id(after)
    assert all(np.array_equal(new_vectors[i], vectors[i]) for i in ids)  # bit for bit
    assert all(np.array_equal(new_sentences[i], sentences[i]) for i in ids)
    after.close()
    # Dense results among the report's chunks do not move (new chunks may only join the list).
    dense_after = dense_ids(lib_settings, embedder, k=10)
    for q in QUESTIONS:
        assert [i for i in dense_after[q] if i in vectors][:5] == dense_before[q]
    assert dense_ids(lib_settings, embedder, document="cyberspace-community-decade-review") == dense_before

    build = current_build(lib_settings.index_dir)
    again = library.add([tmp_path / "docs" / "harbour-note.md", REPORT_PATH])
    assert again.build is None and {r.key for _, r in again.unchanged} == {"harbour-note",
                                                                            "cyberspace-community-decade-review"}
    assert current_build(lib_settings.index_dir) == build  # a no-op writes no build

    removed = library.remove(["orchard-note", "harbour-note"])
    assert {r.key for r in removed.removed} == {"harbour-note", "orchard-note"}
    assert removed.embedded == {"chunks": 0, "sentences": 0}
    assert [r.key for r in library.documents()] == ["cyberspace-community-decade-review"]
    final = load_current_index(lib_settings)
    assert [c.id for c in final.chunks] == ids
    assert all(np.array_equal(v, vectors[i]) for i, v in vectors_by_id(final).items())
    final.close()
    assert dense_ids(lib_settings, embedder) == dense_before
    readded = library.add([tmp_path / "docs" / "orchard-note.md"])  # the cache still has its vectors
    assert readded.embedded == {"chunks": 0, "sentences": 0}


def test_library_errors(lib_settings, passage_embedder, tmp_path):
    library = Library(lib_settings, embedder=passage_embedder)
    with pytest.raises(UnknownDocument, match="unknown document 'nope'"):
        library.remove(["nope"])
    with pytest.raises(LibraryError, match="empty library"):
        library.remove(["cyberspace-community-decade-review"])
    with pytest.raises(LibraryError, match="one document"):
        library.add(tiny_docs(tmp_path / "d"), key="both")
    with pytest.raises(LibraryError, match="bad document key"):
        library.add([tmp_path / "d" / "orchard-note.md"], key="../etc")
    with pytest.raises(UnknownDocument):
        library.diff("cyberspace-community-decade-review", from_edition="0000")
    with pytest.raises(LibraryError, match="no edition before"):
        library.diff("cyberspace-community-decade-review")


def test_a_question_about_one_document_uses_its_own_acronyms(lib_settings, passage_embedder, embedder, tmp_path):
    folder = tmp_path / "acronyms"
    folder.mkdir()
    (folder / "quay-note.md").write_text("# Quay Note\n\n## 1 Cranes\n\nThe Quay Rotation Method (QRM) "
                                         "assigns cranes to ships by berth.\n")
    (folder / "engine-note.md").write_text("# Engine Note\n\n## 1 Noise\n\nThe Quiet Running Mode (QRM) "
                                           "halves engine noise in port.\n")
    Library(lib_settings, embedder=passage_embedder).add(sorted(folder.iterdir()))
    loaded = load_current_index(lib_settings)
    assert {loaded.documents[d].title: t for d, t in loaded.document_acronyms.items()
            if "QRM" in t} == {"Quay Note": {"QRM": "Quay Rotation Method"},
                               "Engine Note": {"QRM": "Quiet Running Mode"}}
    retriever = open_retriever(lib_settings, embedder, loaded)
    try:
        def asked(**where) -> str:
            return retriever.search(Query("What does QRM change?", 3, **where)).expanded_question

        assert asked(document="engine-note") == "What does QRM change? (Quiet Running Mode)"
        assert asked(document="quay-note") == "What does QRM change? (Quay Rotation Method)"
        assert asked(document="cyberspace-community-decade-review") == "What does QRM change?"  # not its acronym
        library_wide = asked()  # the whole library: the first definition in document order
        assert library_wide in {"What does QRM change? (Quiet Running Mode)",
                                "What does QRM change? (Quay Rotation Method)"}
        assert retriever.index.acronyms["QRM"] in library_wide
        # The report's own acronyms still expand a question asked of it alone.
        report_id = next(d for d, doc in loaded.documents.items() if doc.key == "cyberspace-community-decade-review")
        acronym, expansion = next(iter(loaded.document_acronyms[report_id].items()))
        assert expansion in retriever.search(Query(f"What is {acronym}?", 3,
                                                   document="cyberspace-community-decade-review")).expanded_question
    finally:
        retriever.close()


def test_a_build_from_before_per_document_acronyms_still_loads(lib_settings):
    build = current_build(lib_settings.index_dir)
    stored = json.loads((build / "acronyms.json").read_text())
    library_table = {a: e for table in stored["documents"].values() for a, e in table.items()}
    (build / "acronyms.json").write_text(json.dumps(library_table))  # the old shape: one flat table
    loaded = load_index(Path(lib_settings.index_dir), None, None, verify=False)  # its checksum changed
    try:
        assert loaded.acronyms == library_table and loaded.document_acronyms == {}
    finally:
        loaded.close()


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def second_edition(folder: Path) -> Path:
    """The bundled report with one section rewritten ((IX) of Part 2), one removed ((VIII) of Part 2) and
    one added ((XI), after (X))."""
    text = REPORT_PATH.read_text()
    start = text.index("#### (VIII) Building a More Just")
    text = text[:start] + text[text.index("#### (IX) Cultivating"):]
    old = next(line for line in text.splitlines() if line.startswith("--Presenting a vivid narrative"))
    text = text.replace(old, "--Presenting a vivid narrative. Lighthouse keepers on remote islands now stream "
                             "their evening logbooks to village libraries over satellite links, and schools "
                             "replay them in class.")
    at = text.index("# PART 3")
    text = text[:at] + ("#### (XI) Building Tidal Observatories for Cyberspace Research\n\nA network of tidal "
                        "observatories shares sea-level readings with universities every hour through "
                        "an open portal run by volunteers.\n\n") + text[at:]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_PATH.name
    path.write_text(text)
    return path


def test_two_editions_diff_and_citations(lib_settings, passage_embedder, embedder, tmp_path):
    library = Library(lib_settings, embedder=passage_embedder)
    first = library.documents()[0]
    change = library.add([second_edition(tmp_path / "v2")])
    (new,) = change.added
    assert new.key == first.key and new.edition != first.edition and new.current
    assert 0 < change.embedded["chunks"] <= 4  # the rewritten and the added section's chunks only
    listed = {r.edition: r for r in library.documents()}
    assert not listed[first.edition].current and listed[new.edition].current

    diff = library.diff(first.key)
    assert (diff.from_edition, diff.to_edition) == (first.edition, new.edition)
    assert [(c.kind, (c.new or c.old).title) for c in diff.changes] == [
        ("added", "(XI) Building Tidal Observatories for Cyberspace Research"),
        ("removed", "(VIII) Building a More Just and Equitable Cyberspace Governance System"),
        ("changed", "(IX) Cultivating a More Civic and Uplifting Cyber Environment")]
    assert 0.5 < diff.changed[0].similarity < 1.0
    assert diff.unchanged > 15
    assert library.diff(first.key, new.edition, first.edition).added[0].new.title.startswith("(VIII)")

    retriever = open_retriever(lib_settings, embedder)
    docs = retriever.index.documents
    assert_filters_match_every_chunk(retriever, first.key, first.edition)
    question = "How do lighthouse keepers share their logbooks?"
    current = retriever.search(Query(question, 3)).hits
    old = retriever.search(Query(question, 3, document=first.key, edition=first.edition)).hits
    assert all(h.chunk.edition == new.edition for h in current) and "Lighthouse" in current[0].chunk.text
    assert all(h.chunk.edition == first.edition for h in old) and "Lighthouse" not in " ".join(h.chunk.text for h in old)
    for hit in current + old:  # each citation resolves in its own edition's text
        doc = docs[hit.chunk.document_id]
        assert (doc.key, doc.edition) == (hit.chunk.document_key, hit.chunk.edition)
        for h in hit.highlights:
            assert words(doc.text[h.char_start:h.char_end]) == words(h.text)  # Markdown markup aside
    old_only = retriever.search(Query("Enriching the multi-stakeholder platform", 1, edition=first.edition[:8])).hits
    assert old_only[0].chunk.section_title.startswith("(VIII)")
    assert not any(h.chunk.section_title.startswith("(VIII) Building")
                   for h in retriever.search(Query("Enriching the multi-stakeholder platform", 5)).hits)
    with pytest.raises(UnknownDocument):
        retriever.search(Query("x", edition="ffffffffffff"))
    retriever.close()

    library.remove([f"{first.key}@{new.edition}"])  # the earlier edition is current again
    assert [(r.edition, r.current) for r in library.documents()] == [(first.edition, True)]


def assert_filters_match_every_chunk(retriever, key: str, edition: str) -> None:
    """The retriever's chunk filters (gathered from its position tables) against reading every chunk."""
    chunks = retriever.index.chunks
    current = {d.id for d in retriever.index.documents.values() if d.current}
    old_id = next(d.id for d in retriever.index.documents.values() if d.edition == edition)

    def brute(section=None, document=None):
        return [i for i, c in enumerate(chunks) if (c.document_id == document if document else c.document_id in current)
                and (section is None or c.section_id == section or c.section_id.startswith(section + "."))]

    assert retriever.chunk_filter(Query("x")).allowed.tolist() == brute()  # older edition left out
    assert retriever.chunk_filter(Query("x", document=key, edition=edition)).allowed.tolist() == brute(document=old_id)
    sections = sorted({c.section_id for c in chunks})
    assert any(other.startswith(s + ".") for s in sections for other in sections)  # parents with subsections
    for section in sections:
        assert retriever.chunk_filter(Query("x", section=section)).allowed.tolist() == brute(section)
        assert retriever.chunk_filter(Query("x", section=section, edition=edition)).allowed.tolist() == \
            brute(section, old_id)


def run_cli(args, settings, timeout=240, **env):
    full_env = dict(os.environ, REPORTQA_INDEX_DIR=str(settings.index_dir), **env)
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def test_kill_9_during_add_leaves_the_previous_build(lib_settings, passage_embedder, embedder, tmp_path):
    docs = tiny_docs(tmp_path / "docs")
    library = Library(lib_settings, embedder=passage_embedder)
    library.add(docs[:1])
    library.remove(["harbour-note"])  # its vectors stay cached: the killed subprocesses need no model
    build = current_build(lib_settings.index_dir)
    listed = library.documents()
    answer = dense_ids(lib_settings, embedder)
    for point in ("after-vectors", "after-index", "after-publish", "before-current"):
        out = run_cli(["add", str(docs[0]), "--quiet"], lib_settings, **{FAILPOINT_ENV: point})
        assert out.returncode == -9, (point, out.stderr)
        assert current_build(lib_settings.index_dir) == build, point
        assert library.documents() == listed
        load_index(lib_settings.index_dir, None, None, verify=True).close()  # intact, checksums and all
        assert dense_ids(lib_settings, embedder) == answer
    out = run_cli(["add", str(docs[0]), "--json"], lib_settings)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embedded"] == {"chunks": 0, "sentences": 0}
    assert [r.key for r in library.documents()] == ["cyberspace-community-decade-review", "harbour-note"]
    assert not list((lib_settings.index_dir / "builds").glob(".partial-*"))  # the killed writers' leftovers


def test_a_second_writer_waits_then_gives_up_with_a_clear_message(lib_settings):
    with writer_lock_for(lib_settings, "add"):
        out = run_cli(["remove", "cyberspace-community-decade-review"], lib_settings,
                      REPORTQA_LIBRARY_LOCK_TIMEOUT_S="1")
        with pytest.raises(LibraryBusy, match=r"another writer \(`reportqa add`, pid \d+"):
            with writer_lock_for(lib_settings.model_copy(update={"library_lock_timeout_s": 0.2}), "remove"):
                pass
    assert out.returncode == 5
    assert "waiting up to 1s: another writer (`reportqa add`, pid" in out.stderr
    assert "gave up after waiting 1s" in out.stderr and "Traceback" not in out.stderr


def test_cli_documents_diff_ask_edition(lib_settings, passage_embedder, tmp_path):
    Library(lib_settings, embedder=passage_embedder).add([second_edition(tmp_path / "v2")])
    listed = json.loads(run_cli(["documents", "--json"], lib_settings).stdout)
    old, new = listed
    assert (old["current"], new["current"]) == (False, True) and old["key"] == new["key"]
    text = run_cli(["documents"], lib_settings).stdout
    assert old["edition"] in text and "1 earlier edition" in text
    diff = run_cli(["diff", new["key"], "--json"], lib_settings)
    assert diff.returncode == 0 and json.loads(diff.stdout)["changes"] == 3
    printed = run_cli(["diff", new["key"], "--from", new["edition"], "--to", old["edition"]], lib_settings).stdout
    assert "+ added    [p2.viii]" in printed and "- removed  [p2.xi]" in printed
    asked = run_cli(["ask", "lighthouse keepers logbooks", "--k", "1", "--edition", old["edition"], "--json"],
                    lib_settings)
    citation = json.loads(asked.stdout)["passages"][0]["citation"]
    assert (citation["document_key"], citation["edition"]) == (old["key"], old["edition"])
    bad = run_cli(["diff", "no-such-doc"], lib_settings)
    assert bad.returncode == 3 and "unknown document 'no-such-doc'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    for command in ("add", "remove", "documents", "diff"):
        assert "examples:" in run_cli([command, "--help"], lib_settings).stdout


def test_milvus_lite_gives_the_same_results_as_faiss(lib_settings, passage_embedder, embedder, tmp_path):
    pytest.importorskip("pymilvus")
    docs = tiny_docs(tmp_path / "docs")
    faiss_lib = Library(lib_settings, embedder=passage_embedder)
    faiss_lib.add(docs)  # fills the embedding cache the Milvus library starts from
    milvus_settings = lib_settings.model_copy(update={"index_dir": tmp_path / "milvus", "backend": "milvus"})
    shutil.copytree(lib_settings.index_dir / "embeddings", milvus_settings.index_dir / "embeddings")
    milvus_lib = Library(milvus_settings, embedder=passage_embedder)
    first = milvus_lib.add([REPORT_PATH])
    assert first.embedded == {"chunks": 0, "sentences": 0}

    def same_results(with_tiny: bool) -> None:
        a, b = open_retriever(lib_settings, embedder), open_retriever(milvus_settings, embedder)
        try:
            assert [c.id for c in a.index.chunks] == [c.id for c in b.index.chunks]
            for q in QUESTIONS:
                qv = embedder.encode_query(q)
                for mode in RetrievalMode:
                    ha, hb = a.search(Query(q, 5, mode), qv).hits, b.search(Query(q, 5, mode), qv).hits
                    assert [h.chunk.id for h in ha] == [h.chunk.id for h in hb], (q, mode)
            # A question only the added documents answer: Milvus Lite scores rows upserted later with their own
            # segment's BM25 statistics (README, "Milvus Lite limits"), so BM25 may order the new document's
            # two chunks differently; dense results are the same and both rank the one chunk with its terms first.
            q = "cranes on the east quay"
            qv = embedder.encode_query(q)
            assert [h.chunk.id for h in a.search(Query(q, 5, "dense"), qv).hits] == \
                [h.chunk.id for h in b.search(Query(q, 5, "dense"), qv).hits]
            if with_tiny:
                for mode in RetrievalMode:
                    top = {a.search(Query(q, 1, mode), qv).hits[0].chunk, b.search(Query(q, 1, mode), qv).hits[0].chunk}
                    assert len(top) == 1 and "quay" in top.pop().text, mode
            assert (b.index.manifest["backend"], b.index.backend.size) == ("milvus", len(a.index.chunks))
            assert any(c.document_id == "harbour-note" for c in b.index.chunks) == with_tiny
        finally:
            a.close()
            b.close()

    milvus_lib.add(docs)
    same_results(True)
    for lib in (faiss_lib, milvus_lib):
        lib.remove(["harbour-note"])
    same_results(False)


class CountingEmbedder:
    """A stand-in for the model in the cache's own test only: deterministic vectors, counts what it encodes."""

    fingerprint, dimension = "f" * 64, 4

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, texts, batch_size=32, progress=None):
        self.encoded += texts
        return np.array([[len(t), t.count("a"), 1.0, 0.5] for t in texts], dtype=np.float32)


def test_embedding_cache_embeds_each_text_once_survives_damage_and_merges(tmp_path):
    from index.vector_cache import EmbeddingCache, cached_vectors

    encoder = CountingEmbedder()

    def cache():
        return EmbeddingCache(tmp_path, encoder.fingerprint, "chunks", 4, max_segments=2)

    first = cache()
    out = cached_vectors(["alpha", "beta", "alpha"], encoder, first)
    assert encoder.encoded == ["alpha", "beta"] and np.array_equal(out[0], out[2])
    assert first.save() == 2
    again = cache()
    assert np.array_equal(cached_vectors(["beta", "alpha"], encoder, again), out[[1, 0]])
    assert encoder.encoded == ["alpha", "beta"] and (again.hits, again.misses) == (2, 0)
    for word in ("gamma", "delta"):  # a third segment merges them all into one
        c = cache()
        cached_vectors([word], encoder, c)
        c.save()
    merged = cache()
    assert len(merged.segments) == 1 and len(merged) == 4
    assert not list(tmp_path.rglob("*.tmp"))
    segment = next(tmp_path.rglob("seg-*.npy"))
    segment.write_bytes(segment.read_bytes()[:-8] + b"\0" * 8)  # damaged: dropped, its texts embedded again
    damaged = cache()
    assert len(damaged) == 0
    cached_vectors(["alpha"], encoder, damaged)
    assert encoder.encoded[-1] == "alpha" and len(encoder.encoded) == 5
    other = EmbeddingCache(tmp_path, "e" * 64, "chunks", 4)  # another model: its own, empty cache
    assert len(other) == 0


def test_bench_library_suite_runs_on_a_tiny_qasper_file(settings, tmp_path):
    """`reportqa bench --suite library` in process on three hand-made papers (a library of one)."""
    from test_qasper import TINY

    from eval.bench.library_suite import render, run_library_suite

    papers = dict(TINY)
    papers["2101.00003"] = {"title": "Counting Bees", "abstract": "Bees.", "full_text": [
        {"section_name": "Hives", "paragraphs": ["Each hive was weighed at dawn; colonies gained two kilograms."]}],
        "qas": [{"question": "How much weight did the colonies gain?", "question_id": "q-bees", "answers": []}]}
    path = tmp_path / "qasper.json"
    path.write_text(json.dumps(papers))
    from service.server import start_in_thread

    run = run_library_suite(settings, path, 1, lambda message: None, work=tmp_path / "work",
                            start_service=start_in_thread)
    assert not [s.name for s in run.sections if "error" in s.data]
    lib = run.data("library")
    assert lib["untouched_ids_identical"] and lib["untouched_vectors_identical"] and lib["after_remove_ids_identical"]
    assert lib["add"]["embedded"]["chunks"] == lib["add"]["chunks"] and lib["remove"]["embedded"]["chunks"] == 0
    assert run.data("scratch")["papers"] == 2 and 0 < run.data("ratios")["add_ratio"]
    assert run.data("ratios")["ingest_target_met"] == (run.data("scratch")["chunks_per_s"] >= 100)
    assert "add one paper to 1" in render(run) and "untouched chunk ids / vectors identical" in render(run)
    # the latency section: the real service on the library of one, its paper's questions, filtered and not
    lat = run.data("latency")
    assert lat["served"]["documents"] == 1
    from eval.qasper_data import load_qasper

    asked = len(load_qasper(path, 1)[0].questions)  # the library's one paper: the file's first
    for name in ("filtered", "whole_library"):
        s = lat[name]
        assert s["errors"] == 0 and s["post"]["n"] == s["st_encode"]["n"] >= 1
        assert s["post_1_thread"]["n"] == s["st_encode_1_thread"]["n"] >= 1  # every other question
        assert s["post"]["n"] + s["post_1_thread"]["n"] == s["server_took"]["n"]
        assert s["ratio_p50_to_st_encode"] == pytest.approx(s["post"]["median_ms"] / s["st_encode"]["median_ms"],
                                                            abs=1e-3) and s["ratio_p50_to_st_encode"] > 0
        assert s["ratio_p50_to_st_encode_1_thread"] == pytest.approx(
            s["post_1_thread"]["median_ms"] / s["st_encode_1_thread"]["median_ms"], abs=1e-3)
    assert lat["filtered"]["server_took"]["n"] == asked
    assert "POST /query, filtered to the question's paper" in render(run)
    # --latency-only: the same library served again, no build; refused where no library run finished
    again = run_library_suite(settings, path, 1, lambda message: None, work=tmp_path / "work",
                              start_service=start_in_thread, latency_only=True)
    assert [s.name for s in again.sections] == ["latency"] and "error" not in again.data("latency")
    assert again.data("latency")["filtered"]["server_took"]["n"] == asked
    with pytest.raises(ValueError, match="no finished library"):
        run_library_suite(settings, path, 1, lambda message: None, work=tmp_path / "empty",
                          start_service=start_in_thread, latency_only=True)
