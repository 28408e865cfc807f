"""The ``library`` suite (issue 16): what adding and removing one report costs against building from scratch.

    reportqa bench --suite library --qasper FILE --papers N [--work DIR] [--json FILE]

The first N+2 QASPER papers are rendered as Markdown (:func:`eval.qasper_data.render_markdown`); then:

1. **scratch**: ``ingest`` of papers 1..N+1 into a fresh index (read, chunk, embed every chunk and sentence,
   index), timed, with chunks/s;
2. the library of N: a copy of that build with paper N+1 removed (``Library.remove``; this first change seeds
   the library's embedding cache from the build's stored vectors, as on any index made by ``ingest``);
3. **add one**: ``Library.add`` of paper N+2, a paper the library has never seen (the library then holds N+1
   papers, the size the scratch build had), timed; **remove one**: ``Library.remove`` of it again, timed;
4. **stability**: the N untouched papers' chunk ids and vectors before and after the add (bit for bit), and on
   a fixed question set (the first question of each of the first ``QUESTIONS`` papers, over the whole library)
   dense top-5 identical among the untouched papers' chunks, raw dense top-5 and hybrid top-5 overlap after
   the add, and dense top-5 identical after the remove;
5. **latency**: the real service on the library build, ``POST /query`` p50 of its papers' QASPER questions
   (filtered to their paper, and over the whole library) against a bare sentence-transformers encode of the
   same question (:mod:`eval.bench.library_latency`; needs a service starter, which the command line passes).

Ratios are from one run, on the same machine and settings. Peak RSS is the process's (the scratch build).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.bench.library_latency import latency_section
from eval.bench.plan import TARGET_INGEST_CHUNKS_S
from eval.bench.procstats import peak_mb
from eval.bench.runner import BenchRun, Runner, SectionResult
from eval.bench.service_start import StartService
from eval.bench.tables import table
from eval.progress import Log, Progress
from eval.qasper_data import load_qasper, render_markdown

QUESTIONS = 50  # papers whose first question forms the fixed question set
TARGET_ADD, TARGET_REMOVE = 0.05, 0.02  # the "done when": add <= 5%, remove <= 2% of the scratch build


class LibraryBench:
    """The papers on disk and the indexes the sections share."""

    def __init__(self, qasper: Path, papers: int, work: Path, settings, log: Log, progress: Progress | None):
        self.settings, self.log, self.progress = settings, log, progress
        self.work = work
        chosen = load_qasper(qasper, papers + 2)
        if len(chosen) < papers + 2:
            raise ValueError(f"{qasper} holds {len(chosen)} papers; --papers {papers} needs {papers + 2}")
        self.n = papers
        self.base, self.extra = work / "papers", work / "extra"
        for folder in (self.base, self.extra):
            folder.mkdir(parents=True, exist_ok=True)
        for i, paper in enumerate(chosen):
            folder = self.base if i <= papers else self.extra
            (folder / f"{paper.id}.md").write_text(render_markdown(paper).text)
        self.removed_for_library = chosen[papers].id  # paper N+1: in the scratch build, not in the library
        self.added = self.extra / f"{chosen[papers + 1].id}.md"  # paper N+2: new to the library
        # The library's papers (1..N) by document key, with all their questions: the latency section's.
        self.library_questions = [(_key(p.id), [q.question for q in p.questions]) for p in chosen[:papers]]
        # Distinct questions: QASPER papers often share one ("Do they report results only on English data?").
        self.questions = list(dict.fromkeys(p.questions[0].question for p in chosen[:min(papers, QUESTIONS)]
                                            if p.questions))
        self.scratch_dir, self.library_dir = work / "scratch", work / "library"
        self.embedder = self.chunker = None

    def settings_for(self, folder: Path):
        return self.settings.model_copy(update={"index_dir": folder})


def scratch_section(bench: LibraryBench) -> SectionResult:
    from index import build_index, load_embedder
    from ingest import Chunker, ingest_paths

    s = bench.settings_for(bench.scratch_dir)
    bench.chunker = Chunker.from_settings(s)  # its tokenizers load once, outside every timing
    started = time.perf_counter()
    result = ingest_paths([bench.base], bench.chunker,
                          (lambda n, total, _p: bench.progress("read", n, total)) if bench.progress else None)
    parse = time.perf_counter() - started
    t = time.perf_counter()
    bench.embedder = load_embedder(s, ingest=True)
    model = time.perf_counter() - t
    t = time.perf_counter()
    _, timings = build_index(s, result, bench.embedder, bench.progress)
    build = time.perf_counter() - t
    sentences = sum(len(c.sentences) for c in result.chunks)
    total = parse + build  # the model load is left out: a library change loads it too, when it embeds
    data = {"papers": len(result.documents), "chunks": len(result.chunks), "sentences": sentences,
            "seconds": round(total, 2), "parse_seconds": round(parse, 2), "model_load_seconds": round(model, 2),
            "embed_seconds": round(timings["embed"], 2), "index_seconds": round(timings["index"], 2),
            "chunks_per_s": round(len(result.chunks) / total, 1),
            "embedded_chunks_per_s": round(len(result.chunks) / timings["embed"], 1),
            "peak_rss_mb": round(peak_mb(), 1)}
    bench.log(f"scratch build of {data['papers']} papers: {data['chunks']} chunks in {total:.1f}s")
    return SectionResult("scratch", data, "")


def _state(settings, embedder_q, questions: list[str]) -> dict:
    from index import Query, load_current_index, open_retriever

    loaded = load_current_index(settings)
    retriever = open_retriever(settings, embedder_q, loaded)
    try:
        vectors = dict(zip((c.id for c in loaded.chunks), loaded.backend.vectors()))
        dense, hybrid = {}, {}
        for q in questions:
            qv = retriever.encode(q)
            dense[q] = [h.chunk.id for h in retriever.search(Query(q, 10, "dense"), qv).hits]
            hybrid[q] = [h.chunk.id for h in retriever.search(Query(q, 5, "hybrid"), qv).hits]
        return {"ids": [c.id for c in loaded.chunks], "vectors": vectors, "dense": dense, "hybrid": hybrid,
                "doc_of": {c.id: c.document_id for c in loaded.chunks}}
    finally:
        retriever.close()


def library_section(bench: LibraryBench) -> SectionResult:
    from index import load_embedder
    from index.library import Library

    shutil.copytree(bench.scratch_dir, bench.library_dir)
    s = bench.settings_for(bench.library_dir)
    library = Library(s, embedder=bench.embedder, chunker=bench.chunker, progress=bench.progress)
    t = time.perf_counter()
    seeded = library.remove([_key(bench.removed_for_library)])
    seed_seconds = time.perf_counter() - t
    question_embedder = load_embedder(s)
    before = _state(s, question_embedder, bench.questions)
    t = time.perf_counter()
    added = library.add([bench.added])
    add_seconds = time.perf_counter() - t
    after_add = _state(s, question_embedder, bench.questions)
    t = time.perf_counter()
    removed = library.remove([added.added[0].key])
    remove_seconds = time.perf_counter() - t
    after_remove = _state(s, question_embedder, bench.questions)
    data = {"first_change_seconds": round(seed_seconds, 2), "first_change": seeded.seconds,
            "add_seconds": round(add_seconds, 2), "add": {"embedded": added.embedded, "reused": added.reused,
                                                          "seconds": added.seconds,
                                                          "chunks": added.added[0].chunks},
            "remove_seconds": round(remove_seconds, 2), "remove": {"embedded": removed.embedded,
                                                                   "seconds": removed.seconds},
            **_stability(before, after_add, after_remove), "questions": len(bench.questions),
            "peak_rss_mb": round(peak_mb(), 1)}
    return SectionResult("library", data, "")


def _key(paper_id: str) -> str:
    from index.catalog import default_key

    return default_key(f"{paper_id}.md", "")


def _stability(before: dict, after: dict, after_remove: dict) -> dict:
    untouched = [i for i in before["ids"]]
    same_ids = after["ids"][:len(untouched)] == untouched
    same_vectors = all(np.array_equal(after["vectors"][i], before["vectors"][i]) for i in untouched)
    old = set(untouched)
    questions = list(before["dense"])
    dense_untouched = sum([i for i in after["dense"][q] if i in old][:5] == before["dense"][q][:5] for q in questions)
    dense_raw = sum(after["dense"][q][:5] == before["dense"][q][:5] for q in questions)
    overlap = [len(set(after["hybrid"][q]) & set(before["hybrid"][q])) / 5 for q in questions]
    return {"untouched_ids_identical": same_ids, "untouched_vectors_identical": same_vectors,
            "dense_top5_identical_untouched": dense_untouched, "dense_top5_identical_raw": dense_raw,
            "hybrid_top5_overlap_mean": round(float(np.mean(overlap)), 3) if overlap else None,
            "hybrid_top5_identical": sum(after["hybrid"][q] == before["hybrid"][q] for q in questions),
            "after_remove_ids_identical": after_remove["ids"] == untouched,
            "after_remove_dense_top5_identical": sum(after_remove["dense"][q][:5] == before["dense"][q][:5]
                                                     for q in questions),
            "after_remove_hybrid_top5_identical": sum(after_remove["hybrid"][q] == before["hybrid"][q]
                                                      for q in questions)}


def ratios_section(run: BenchRun) -> SectionResult:
    scratch, lib = run.data("scratch"), run.data("library")
    if "seconds" not in scratch or "add_seconds" not in lib:
        raise RuntimeError("the scratch or library section failed; no ratios")
    add, remove = lib["add_seconds"] / scratch["seconds"], lib["remove_seconds"] / scratch["seconds"]
    n = scratch["papers"]
    rows = [
        [f"scratch build, {n} papers (read, chunk, embed, index)", f"{scratch['seconds']:.1f}", "1.000",
         f"{scratch['chunks']:,} chunks, {scratch['sentences']:,} sentences; {scratch['chunks_per_s']} chunks/s "
         f"({scratch['embedded_chunks_per_s']} while embedding; target >= {TARGET_INGEST_CHUNKS_S:g}: "
         f"{'met' if scratch['chunks_per_s'] >= TARGET_INGEST_CHUNKS_S else 'NOT met'}, the ceiling: "
         f"`--suite encoders`); model load {scratch['model_load_seconds']}s not counted"],
        [f"add one paper to {n - 1}", f"{lib['add_seconds']:.2f}", f"{add:.4f}",
         f"embedded {lib['add']['embedded']}, reused {lib['add']['reused']} "
         f"(target <= {TARGET_ADD:.2f}: {'met' if add <= TARGET_ADD else 'NOT met'})"],
        [f"remove one paper of {n}", f"{lib['remove_seconds']:.2f}", f"{remove:.4f}",
         f"embedded {lib['remove']['embedded']} (target <= {TARGET_REMOVE:.2f}: "
         f"{'met' if remove <= TARGET_REMOVE else 'NOT met'})"],
        ["first change on an `ingest` build (seeds the cache)", f"{lib['first_change_seconds']:.2f}",
         f"{lib['first_change_seconds'] / scratch['seconds']:.4f}", "a remove; one-time"],
    ]
    q = lib["questions"]
    checks = [
        ["untouched chunk ids / vectors identical after add", f"{lib['untouched_ids_identical']} / "
                                                              f"{lib['untouched_vectors_identical']}"],
        ["dense top-5 identical among untouched chunks after add", f"{lib['dense_top5_identical_untouched']}/{q}"],
        ["dense top-5 identical after add (raw: the new paper may enter)", f"{lib['dense_top5_identical_raw']}/{q}"],
        ["hybrid top-5 overlap after add (mean) / identical", f"{lib['hybrid_top5_overlap_mean']} / "
                                                             f"{lib['hybrid_top5_identical']}/{q}"],
        ["after remove: ids identical; dense / hybrid top-5 identical",
         f"{lib['after_remove_ids_identical']}; {lib['after_remove_dense_top5_identical']}/{q} / "
         f"{lib['after_remove_hybrid_top5_identical']}/{q}"],
        ["peak RSS", f"{max(scratch['peak_rss_mb'], lib['peak_rss_mb']):,.0f} MiB"],
    ]
    data = {"add_ratio": round(add, 5), "remove_ratio": round(remove, 5), "add_target_met": add <= TARGET_ADD,
            "remove_target_met": remove <= TARGET_REMOVE,
            "ingest_target_met": scratch["chunks_per_s"] >= TARGET_INGEST_CHUNKS_S}
    text = table(f"Library: one change against a scratch build ({n} QASPER papers; one run)",
                 ["step", "seconds", "÷ scratch", "what"], rows) + "\n\n" + \
        table("Library: untouched papers", ["check", "value"], checks)
    return SectionResult("ratios", data, text)


def run_library_suite(settings, qasper: Path, papers: int, log: Log, progress: Progress | None = None,
                      work: Path | None = None, start_service: StartService | None = None,
                      latency_only: bool = False) -> BenchRun:
    """``start_service`` (e.g. ``service.server.start_in_thread``) serves the library for the latency section;
    without it that section fails and says why, the others run. ``latency_only``: serve the library an
    earlier run of the same ``qasper`` and ``papers`` left in ``work`` (a latency change needs no new build)."""
    runner = Runner("library", log)
    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="reportqa-library-bench-"))
    if latency_only:
        if not (folder / "library" / "CURRENT").is_file():
            raise ValueError(f"{folder} holds no finished library benchmark; run the suite without --latency-only")
        bench = LibraryBench(qasper, papers, folder, settings, log, progress)
        runner.run.meta = {"papers": papers, "work": str(folder), "latency_only": True}
        runner.section("latency", "library latency", latency_section, bench.settings_for(bench.library_dir),
                       bench.library_questions, start_service, log)
        return runner.run
    if (folder / "scratch").exists() or (folder / "library").exists():
        raise ValueError(f"{folder} already holds a library benchmark; give an empty --work folder")
    try:
        bench = LibraryBench(qasper, papers, folder, settings, log, progress)
        runner.run.meta = {"papers": papers, "questions": len(bench.questions), "work": str(folder)}
        runner.section("scratch", "scratch build", scratch_section, bench)
        runner.section("library", "library add/remove", library_section, bench)
        runner.section("ratios", "ratios", ratios_section, runner.run)
        runner.section("latency", "library latency", latency_section, bench.settings_for(bench.library_dir),
                       bench.library_questions, start_service, log)
    finally:
        if not work:
            shutil.rmtree(folder, ignore_errors=True)
    return runner.run


def render(run: BenchRun) -> str:
    return "\n\n".join(s.table for s in run.sections if s.table)
