"""FAISS vs Milvus: query latency and ingest speed at the report's size and at 100k synthetic chunks (issue 7).

    reportqa bench --suite backends [--index DIR] [--sizes report,100000] [--queries 100] [--json FILE]

* report size: the current build's own chunks and vectors (``--index``), queried with the eval set's
  questions (embedded once with the real model);
* N synthetic chunks: clustered unit vectors and Zipf pseudo-text (:mod:`eval.bench.synthetic`),
  queried with fresh vectors from the same clusters and 3-6 word pseudo-questions.

Both backends get the same chunks, vectors and questions. Measured per backend:

* ingest: writing the index from embedded chunks (embedding itself is the same for both and excluded).
  FAISS: ``DenseIndex.build`` + ``LexicalIndex.build`` (bm25s, our normaliser); at synthetic sizes both
  exact (flat) and HNSW (what ``DenseIndex`` builds above ``exact_search_max``). Milvus: ``sync_collection``
  into a fresh collection (our normaliser, row hashes, batched upserts, flush, index build on load);
  then a second, unchanged sync (the no-op re-ingest);
* query latency over >= 100 questions, median and p95, calling the backend the way the retriever does:
  ``dense`` = the dense search alone, ``bm25`` = BM25 alone, ``hybrid`` = ``rank(..., hybrid=True)``
  (FAISS: dense + BM25, fused by the retriever; Milvus: dense + BM25 + one engine-side ``hybrid_search``
  with RRF), ``hybrid+filter`` = the same restricted to one section/document;
* dense recall@10 against exact search, where the index is approximate (HNSW).

Milvus is Milvus Lite in this process (a temporary ``.db``) unless ``REPORTQA_MILVUS_URI`` names a server;
then collections ``<collection>_bench_<size>`` are created there and dropped afterwards.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from eval.bench.procstats import latency_stats
from eval.bench.runner import BenchRun, Runner, SectionResult
from eval.bench.synthetic import clustered_unit_vectors, vocabulary, zipf_texts
from eval.progress import Log, Progress
from index.analysis import normalise
from index.backends import ChunkFilter
from index.backends.faiss import DenseIndex, FaissBackend, LexicalIndex
from index.backends.milvus import MilvusBackend, MilvusTarget, choose_index_type, connect, sync_collection
from ingest import Chunk

DEPTH = 50
MIN_QUERIES = 100


# --------------------------------------------------------------------- workloads


class Workload:
    """Chunks with vectors, and questions with vectors, filters and the exact dense top-10."""

    def __init__(self, name: str, chunks: list[Chunk], vectors: np.ndarray, questions: list[str],
                 question_vectors: np.ndarray, filters: list[ChunkFilter], k1: float, b: float, fingerprint: str):
        self.name, self.chunks, self.vectors = name, chunks, np.ascontiguousarray(vectors, dtype=np.float32)
        self.questions, self.question_vectors, self.filters = questions, question_vectors, filters
        self.k1, self.b, self.fingerprint = k1, b, fingerprint
        exact = self.vectors @ self.question_vectors.T
        self.exact_top10 = [set(np.argsort(-exact[:, q])[:10].tolist()) for q in range(len(questions))]


def report_workload(settings, queries: int) -> Workload:
    """The current build (either backend) and the eval set's questions."""
    from eval.harness import load_questions
    from index import load_current_index, load_embedder

    loaded = load_current_index(settings)
    vectors = loaded.backend.vectors()
    questions = [q.question for q in load_questions()]
    while len(questions) < queries:
        questions += questions[:queries - len(questions)]
    embedder = load_embedder(settings)
    qv = embedder.encode(questions, 32)
    sections = sorted({c.section_id for c in loaded.chunks})
    parts = [s for s in sections if "." not in s] or sections
    filters = []
    for i in range(len(questions)):
        section = parts[i % len(parts)]
        prefix = section + "."
        allowed = np.flatnonzero([c.section_id == section or c.section_id.startswith(prefix) for c in loaded.chunks])
        filters.append(ChunkFilter(section, None, allowed))
    build = loaded.manifest["build_settings"]
    return Workload(f"report ({len(loaded.chunks)} chunks)", loaded.chunks, vectors, questions, qv, filters,
                    build["bm25_k1"], build["bm25_b"], loaded.manifest["model"]["fingerprint"])


def synthetic_workload(n: int, queries: int, k1: float, b: float) -> Workload:
    """``n`` synthetic chunks in 100 documents of 10 sections each; pseudo-questions of 3-6 frequent words."""
    vectors, qv, _ = clustered_unit_vectors(n, queries, seed=7)
    vocab = vocabulary(20_000, seed=3)
    texts = zipf_texts(n, vocab, seed=4)
    rng = np.random.default_rng(9)
    chunks = []
    per_doc = max(1, n // 100)
    for i, text in enumerate(texts):
        doc, section = f"doc{i // per_doc:03d}", f"s{(i % per_doc) * 10 // per_doc}"
        chunks.append(Chunk(id=f"{i:020x}", document_id=doc, section_id=section, section_title=f"Section {section}",
                            section_path=(f"Section {section}",), ordinal=i % per_doc, text=text, embed_text=text,
                            char_start=0, char_end=len(text), tokens=0, model_tokens=0))
    questions = [" ".join(vocab[j] for j in rng.integers(0, 2_000, int(rng.integers(3, 7)))) for _ in range(queries)]
    filters = []
    doc_of = np.array([c.document_id for c in chunks], dtype=object)
    for q in range(queries):
        doc = f"doc{int(rng.integers(0, 100)):03d}"
        filters.append(ChunkFilter(None, doc, np.flatnonzero(doc_of == doc)))
    return Workload(f"synthetic ({n:,} chunks)", chunks, vectors, questions, qv, filters, k1, b, "synthetic")


# --------------------------------------------------------------------- measuring


def _latencies(backend, work: Workload) -> dict:
    out: dict[str, dict] = {}
    qs, qv = work.questions, work.question_vectors
    everything = ChunkFilter()
    if isinstance(backend, FaissBackend):
        dense = lambda i: backend.dense.search(qv[i], DEPTH)  # noqa: E731
        bm25 = lambda i: np.argpartition(-backend.lexical.scores(qs[i]), DEPTH)[:DEPTH]  # noqa: E731
    else:
        expr = ""
        dense = lambda i: backend._dense(qv[i], expr, DEPTH)  # noqa: E731
        bm25 = lambda i: backend._bm25(backend.bm25_query(qs[i]), expr, DEPTH)  # noqa: E731
    runs = {
        "dense": dense,
        "bm25": bm25,
        "hybrid": lambda i: backend.rank(qs[i], qv[i], everything, DEPTH, hybrid=True),
        "hybrid+filter": lambda i: backend.rank(qs[i], qv[i], work.filters[i], DEPTH, hybrid=True),
    }
    for name, call in runs.items():
        call(0)  # warm
        seconds = []
        for i in range(len(qs)):
            started = time.perf_counter()
            call(i)
            seconds.append(time.perf_counter() - started)
        out[name] = latency_stats(seconds)
    recall = []
    for i in range(len(qs)):
        ranking = backend.rank(qs[i], qv[i], everything, DEPTH)
        top = sorted(ranking.dense, key=lambda p: ranking.dense[p][0])[:10]
        recall.append(len(set(top) & work.exact_top10[i]) / 10)
    out["dense_recall@10"] = round(float(np.mean(recall)), 4)
    return out


def bench_faiss(work: Workload, exact_search_max: int, label: str) -> dict:
    started = time.perf_counter()
    dense = DenseIndex.build(work.vectors, exact_search_max)
    dense_s = time.perf_counter() - started
    lexical = LexicalIndex.build([c.embed_text for c in work.chunks], work.k1, work.b)
    seconds = time.perf_counter() - started
    backend = FaissBackend(dense, lexical)
    kind = dense.kind + ("-sq8" if isinstance(dense.index, faiss.IndexHNSWSQ) else "")
    return {"backend": label, "index": kind, "chunks": len(work.chunks), "ingest_s": round(seconds, 3),
            "chunks_per_s": round(len(work.chunks) / seconds, 1), "dense_build_s": round(dense_s, 3),
            "resync_s": None, **_latencies(backend, work)}


def bench_milvus(work: Workload, target: MilvusTarget, index_type: str, label: str,
                 progress: Progress | None = None) -> dict:
    client = connect(target)
    if client.has_collection(target.collection):
        client.drop_collection(target.collection)
    try:
        started = time.perf_counter()
        terms = [normalise(c.embed_text) for c in work.chunks]
        sync = sync_collection(target, work.chunks, work.vectors, terms, work.fingerprint, work.k1, work.b,
                               flat_max=0, progress=progress, index_type=index_type)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = sync_collection(target, work.chunks, work.vectors, terms, work.fingerprint, work.k1, work.b,
                                flat_max=0, index_type=index_type)
        resync = time.perf_counter() - started
        assert again.upserted == 0 and again.deleted == 0
        vocabulary = sorted({t for ts in terms for t in ts})
        backend = MilvusBackend(target, [c.id for c in work.chunks], vocabulary, work.k1, sync.index_type)
        return {"backend": label, "index": sync.index_type.lower(), "chunks": len(work.chunks),
                "ingest_s": round(seconds, 3), "chunks_per_s": round(len(work.chunks) / seconds, 1),
                "sync_s": round(sync.seconds, 3), "resync_s": round(resync, 3), **_latencies(backend, work)}
    finally:
        client.drop_collection(target.collection)


# --------------------------------------------------------------------- the run


def _milvus_base(settings, tmp: Path | None) -> MilvusTarget:
    """The settings' Milvus server, or Milvus Lite in a temporary file."""
    from index.backends.milvus import resolve_uri

    if settings.milvus_uri:
        return MilvusTarget.from_settings(settings)
    return replace(MilvusTarget.from_settings(settings), uri=resolve_uri(str(tmp / "bench.db"), tmp))


def _release_lite(base: MilvusTarget) -> None:
    try:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(base.uri)
    except Exception:  # best effort: the temporary folder goes anyway
        pass


def _one_size(size, settings, base: MilvusTarget, queries: int, faiss_hnsw: bool, progress: Progress | None,
              log: Log) -> SectionResult:
    if size == "report":
        log("report size: loading the current build and embedding the eval questions")
        work = report_workload(settings, queries)
    else:
        log(f"{int(size):,} synthetic chunks: generating")
        work = synthetic_workload(int(size), queries, settings.bm25_k1, settings.bm25_b)
    n = len(work.chunks)
    rows = []
    # FAISS as configured (flat up to exact_search_max, HNSW above); at synthetic sizes both kinds.
    limits = [settings.exact_search_max] if size == "report" or not faiss_hnsw else [n, 0]
    for limit in limits:
        log(f"  faiss ({'flat' if n <= limit else 'hnsw'})")
        rows.append({"size": work.name, **bench_faiss(work, limit, "faiss")})
    engine = "milvus-lite" if base.is_lite else "milvus"
    index_type = "HNSW" if size != "report" else choose_index_type(n, settings.exact_search_max)
    log(f"  {engine} ({index_type})")
    target = replace(base, collection=f"{base.collection}_bench_{'report' if size == 'report' else size}")
    rows.append({"size": work.name, **bench_milvus(work, target, index_type, engine, progress)})
    return SectionResult(f"size {size}", {"rows": rows}, format_rows(rows))


def run_backends_suite(settings, log: Log, sizes=("report", 100_000), queries: int = MIN_QUERIES,
                       faiss_hnsw: bool = True, progress: Progress | None = None) -> BenchRun:
    """Both backends at each size (one section per size, in order)."""
    queries = max(MIN_QUERIES, queries)
    tmp = None if settings.milvus_uri else Path(tempfile.mkdtemp(prefix="reportqa-bench-"))
    base = _milvus_base(settings, tmp)
    runner = Runner("backends", log)
    runner.run.meta = {"queries": queries, "depth": DEPTH, "milvus": base.describe(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        for size in sizes:
            runner.section(f"size {size}", f"{size}", _one_size, size, settings, base, queries, faiss_hnsw,
                           progress, log)
    finally:
        if tmp is not None:
            _release_lite(base)
            shutil.rmtree(tmp, ignore_errors=True)
    return runner.run


HEADER = (f"{'size':<28}{'backend':<13}{'index':<10}{'ingest s':>9}{'chunks/s':>10}{'re-sync s':>10}"
          + "".join(f"{m + ' p50/p95 ms':>26}" for m in ("dense", "bm25", "hybrid", "hybrid+filter"))
          + f"{'recall@10':>11}")


def format_rows(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        cells = "".join(f"{r[m]['median_ms']:>17.2f} / {r[m]['p95_ms']:<6.2f}" for m in
                        ("dense", "bm25", "hybrid", "hybrid+filter"))
        resync = f"{r['resync_s']:>10.2f}" if r.get("resync_s") is not None else f"{'-':>10}"
        lines.append(f"{r['size']:<28}{r['backend']:<13}{r['index']:<10}{r['ingest_s']:>9.2f}{r['chunks_per_s']:>10,.0f}"
                     f"{resync}{cells}{r['dense_recall@10']:>11.3f}")
    return "\n".join(lines)


def render(run: BenchRun) -> str:
    """One table: a header, each size's rows, and what was measured."""
    m = run.meta
    body = [HEADER] + [s.table for s in run.sections]
    body.append(f"latency over {m['queries']} questions per size, depth {m['depth']}; "
                f"Milvus: {m['milvus']}; ingest excludes embedding")
    return "\n".join(body)
