"""Section 6: scaling on synthetic clustered unit vectors and Zipf pseudo-text: FAISS exact vs HNSW,
recall, memory, memory-mapped loading, and BM25."""
from __future__ import annotations

import gc
import shutil
import time
import traceback
from pathlib import Path

import numpy as np

from eval.bench.plan import Plan
from eval.bench.procstats import Heartbeat, is_mapped, latency_stats, memory, memory_delta
from eval.bench.runner import SectionResult
from eval.bench.synthetic import DIM, NOISE, clustered_unit_vectors, vocabulary, zipf_texts
from eval.bench.tables import mib, table
from eval.progress import Log

TOP = 10  # neighbours compared for recall
LOAD_CHECK_QUERIES = 50
VOCABULARY = 20_000


def mean_recall(found, truth, k: int) -> float:
    """Mean over queries of |found ∩ truth| / k (each row: the ids one query returned / should return)."""
    return float(np.mean([len(set(np.asarray(f).tolist()) & set(np.asarray(g).tolist())) / k
                          for f, g in zip(found, truth)]))


def _timed_searches(index, queries) -> tuple[list[float], list]:
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q, TOP)
        times.append(time.perf_counter() - t)
        found.append(ids)
    return times, found


def _one_thread_searches(index, queries) -> list[float]:
    """What-if: FAISS limited to one OpenMP thread (one query per request needs no more)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        return _timed_searches(index, queries)[0]
    finally:
        faiss.omp_set_num_threads(threads)


def _measure_kind(kind: str, exact_max: int, vectors, queries, truth, folder: Path, log: Log):
    """Build one kind of DenseIndex, query it, save it, check its loads; (info, exact top-10 when flat)."""
    import faiss

    from index.backends.base import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
    from index.backends.faiss import DenseIndex

    n = len(vectors)
    gc.collect()
    m0 = memory()
    log(f"scaling {n:,}: building {kind}" + (f" (M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION})"
                                            if kind == "hnsw" else ""))
    t = time.perf_counter()
    with Heartbeat(f"building {kind} over {n:,} vectors", log):
        index = DenseIndex.build(vectors, exact_max)
    build_s = time.perf_counter() - t
    m1 = memory()
    assert index.kind == kind, (index.kind, kind)
    if kind == "flat":  # exact ground truth, batched
        _, truth = index.index.search(queries, TOP)
    times, found = _timed_searches(index, queries)
    recall = mean_recall(found, truth, TOP)
    times_1 = _one_thread_searches(index, queries)
    path = folder / f"{kind}.faiss"
    t = time.perf_counter()
    index.save(path)
    info = {
        "build_s": round(build_s, 3), "save_s": round(time.perf_counter() - t, 3),
        "file_mb": round(path.stat().st_size / 2**20, 1), "rss_delta_mb": memory_delta(m1, m0),
        "query": latency_stats(times), "query_1thread": latency_stats(times_1),
        "faiss_threads": faiss.omp_get_max_threads(), "recall_at_10": round(recall, 4),
        "raw_vectors_mb": round(n * DIM * 4 / 2**20, 1),
    }
    if kind == "flat":
        info["nn_cosine_median"] = round(float(np.median(index.index.search(queries, 1)[0][:, 0])), 3)
    if kind == "hnsw":
        info.update({"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH})
    del index
    gc.collect()
    info.update(load_checks(path, kind, queries, found))
    log(f"scaling {n:,}: {kind}: build {build_s:.1f}s, median {info['query']['median_ms']:.3f} ms, "
        f"recall@10 {recall:.3f}, file {info['file_mb']} MiB, mmap: {info['mmap']['verdict']}")
    return info, truth


def scale_dense(n: int, settings, plan: Plan, tmp: Path, log: Log) -> dict:
    log(f"scaling {n:,}: generating clustered unit vectors")
    t = time.perf_counter()
    vectors, queries, n_centres = clustered_unit_vectors(n, plan.queries, seed=n)
    entry: dict = {"n": n, "centres": n_centres, "generate_s": round(time.perf_counter() - t, 2)}
    folder = tmp / f"scale-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    # the kind the product picks at this size, and both kinds forced
    entry["product_kind"] = "flat" if n <= settings.exact_search_max else "hnsw"
    truth = None
    for kind, exact_max in (("flat", max(n, settings.exact_search_max)), ("hnsw", 0)):
        entry[kind], truth = _measure_kind(kind, exact_max, vectors, queries, truth, folder, log)
    if "nn_cosine_median" in entry["flat"]:
        entry["nn_cosine_median"] = entry["flat"].pop("nn_cosine_median")
    del vectors, queries
    shutil.rmtree(folder, ignore_errors=True)
    return entry


def _check_load(load, path: Path, queries, expected) -> dict:
    gc.collect()
    m0 = memory()
    t = time.perf_counter()
    try:
        index = load()
    except Exception as exc:  # noqa: BLE001 - report, don't crash
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    load_s = time.perf_counter() - t
    mapped = is_mapped(path)
    times, same = [], 0
    for q, want in zip(queries, expected):
        t = time.perf_counter()
        _, ids = index.search(q, TOP)
        times.append(time.perf_counter() - t)
        same += int(np.array_equal(ids, want))
    m1 = memory()
    del index
    gc.collect()
    return {"ok": True, "load_s": round(load_s, 3), "rss_delta_mb": memory_delta(m1, m0), "file_mapped": mapped,
            "query": latency_stats(times), "same_results": same == len(queries)}


def load_checks(path: Path, kind: str, queries: np.ndarray, expected: list) -> dict:
    """DenseIndex.load in RAM vs with mmap=True; is the mmap load really memory-mapped? Also FAISS's
    IO_FLAG_MMAP_IFC (zero-copy mmap of the vectors), the flag that does map HNSW/flat storage."""
    import faiss

    from index.backends.faiss import DenseIndex

    file_mb = path.stat().st_size / 2**20
    sub = queries[: min(len(queries), LOAD_CHECK_QUERIES)]
    out = {"load_ram": _check_load(lambda: DenseIndex.load(path, kind, mmap=False), path, sub, expected),
           "load_mmap": _check_load(lambda: DenseIndex.load(path, kind, mmap=True), path, sub, expected)}
    ifc = getattr(faiss, "IO_FLAG_MMAP_IFC", None)
    if ifc is not None:
        out["load_mmap_ifc"] = _check_load(
            lambda: DenseIndex(faiss.read_index(str(path), ifc | faiss.IO_FLAG_READ_ONLY), kind), path, sub, expected)
    mm = out["load_mmap"]
    if not mm["ok"]:
        verdict = f"FAILED: {mm['error']}"
    elif mm["file_mapped"] is None:  # no /proc: judge by anonymous memory growth
        verdict = "NOT mapped (read into RAM)" if mm["rss_delta_mb"]["anon_mb"] > 0.5 * file_mb else "mapped?"
    else:
        verdict = "mapped" if mm["file_mapped"] else "NOT mapped: FAISS read it into RAM"
    out["mmap"] = {"verdict": verdict, "file_mb": round(file_mb, 1),
                   "ifc_mapped": out.get("load_mmap_ifc", {}).get("file_mapped")}
    return out


def scale_bm25(n: int, settings, plan: Plan, log: Log) -> dict:
    from index.backends.faiss import LexicalIndex

    vocab = vocabulary(VOCABULARY, seed=7)
    log(f"scaling {n:,}: generating {n:,} Zipf pseudo-sentences for BM25")
    t = time.perf_counter()
    texts = zipf_texts(n, vocab, seed=n + 1)
    gen_s = time.perf_counter() - t
    gc.collect()
    m0 = memory()
    log(f"scaling {n:,}: LexicalIndex.build")
    t = time.perf_counter()
    with Heartbeat(f"building BM25 over {n:,} texts", log):
        lexical = LexicalIndex.build(texts, settings.bm25_k1, settings.bm25_b)
    build_s = time.perf_counter() - t
    m1 = memory()
    rng = np.random.default_rng(n + 2)
    questions = []
    for _ in range(plan.queries):
        k = int(rng.integers(3, 7))
        words = [vocab[i] for i in rng.integers(20, 5_000, k)]  # mid-frequency content words
        questions.append("what about " + " ".join(words) + "?")
    scores_t, top_t = [], []
    depth = settings.candidates
    for q in questions:
        t = time.perf_counter()
        scores = lexical.scores(q)
        t1 = time.perf_counter()
        top = np.argpartition(-scores, depth - 1)[:depth] if len(scores) > depth else np.arange(len(scores))
        top[np.argsort(-scores[top], kind="stable")]  # what FaissBackend.rank does with them
        t2 = time.perf_counter()
        scores_t.append(t1 - t)
        top_t.append(t2 - t)
    del texts, lexical
    gc.collect()
    res = {"generate_s": round(gen_s, 2), "build_s": round(build_s, 3), "rss_delta_mb": memory_delta(m1, m0),
           "scores_query": latency_stats(scores_t), "scores_plus_topk_query": latency_stats(top_t),
           "vocabulary": len(vocab)}
    log(f"scaling {n:,}: bm25 build {build_s:.1f}s, median scores {res['scores_query']['median_ms']:.2f} ms, "
        f"+top-k {res['scores_plus_topk_query']['median_ms']:.2f} ms")
    return res


def _rows(res: dict) -> tuple[list, list, list]:
    dense_rows, mem_rows, bm25_rows = [], [], []
    for e in res["sizes"]:
        n = e["n"]
        if "error" in e:
            dense_rows.append([f"{n:,}", "error", e["error"], "", "", "", "", ""])
        else:
            for kind in ("flat", "hnsw"):
                k = e[kind]
                label = kind + (" *" if e["product_kind"] == kind else "")
                dense_rows.append([f"{n:,}", label, k["build_s"], k["query"]["median_ms"], k["query"]["p95_ms"],
                                   k["query_1thread"]["median_ms"], k["recall_at_10"], k["file_mb"]])
                mm, ifc = k["load_mmap"], k.get("load_mmap_ifc", {})
                mem_rows.append([
                    f"{n:,}", kind, mib(k["rss_delta_mb"]["rss_mb"]),
                    mib(k["load_ram"].get("rss_delta_mb", {}).get("anon_mb")),
                    mib(mm.get("rss_delta_mb", {}).get("anon_mb")) if mm.get("ok") else "error",
                    k["mmap"]["verdict"],
                    (f"anon {ifc['rss_delta_mb']['anon_mb']:+.0f} / file {ifc['rss_delta_mb']['file_mb']:+.0f}"
                     + ("" if ifc.get("same_results") else " (results differ!)")) if ifc.get("ok") else
                    (ifc.get("error", "-") if ifc else "-"),
                ])
        b = e.get("bm25", {})
        if "error" in b:
            bm25_rows.append([f"{n:,}", "error", b["error"], "", ""])
        elif b:
            bm25_rows.append([f"{n:,}", b["build_s"], b["scores_query"]["median_ms"],
                              b["scores_plus_topk_query"]["median_ms"], mib(b["rss_delta_mb"]["rss_mb"])])
    return dense_rows, mem_rows, bm25_rows


def scaling_tables(res: dict, settings, faiss_threads: int) -> str:
    dense_rows, mem_rows, bm25_rows = _rows(res)
    notes = [f"synthetic: {DIM}-d unit vectors around 1,000-5,000 gaussian centres (noise {NOISE}), "
             f"{res['queries']} queries drawn from the same clusters; recall@10 vs exact search",
             "* = the kind the product builds at this size (exact_search_max "
             f"{settings.exact_search_max:,}); query = DenseIndex.search(q, 10), one query at a time"]
    nn = [f"{e['n']:,}: {e['nn_cosine_median']}" for e in res["sizes"] if "nn_cosine_median" in e]
    if nn:
        notes.append("median cosine query -> nearest neighbour: " + ", ".join(nn))
    notes.append("p50 1-thr = the same queries with FAISS limited to 1 OpenMP thread (what-if; the product "
                 f"uses FAISS's default, {faiss_threads} here)")
    out = table("6. Scaling: dense index (FAISS)", ["vectors", "kind", "build s", "p50 ms", "p95 ms",
                                                    "p50 1-thr", "recall@10", "file MiB"], dense_rows, notes)
    out += "\n\n" + table(
        "6b. Scaling: dense index memory (MiB) and memory-mapped load",
        ["vectors", "kind", "RSS build", "anon load", "anon mmap load", "DenseIndex.load(mmap=True)",
         "IO_FLAG_MMAP_IFC load"], mem_rows,
        ["RSS build = RSS growth while building; anon load = anonymous RSS growth after DenseIndex.load "
         "(+50 queries); the product's mmap flags are IO_FLAG_MMAP|IO_FLAG_READ_ONLY",
         "IO_FLAG_MMAP_IFC column: FAISS's zero-copy mmap of the vector storage (not used by the product)"])
    out += "\n\n" + table(
        "6c. Scaling: BM25 (LexicalIndex over Zipf pseudo-sentences, 20k-word vocabulary)",
        ["texts", "build s", "p50 scores ms", "p50 +top-k ms", "RSS build MiB"], bm25_rows,
        ["texts of 60-120 words; questions of 3-6 mid-frequency words; '+top-k' adds the partial sort "
         "(argpartition) FaissBackend.rank does"])
    return out


def _guarded(fn, *args) -> dict:
    try:
        return fn(*args)
    except Exception as exc:  # one size failing must not hide the others
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}


def run(settings, plan: Plan, tmp: Path, faiss_threads: int, log: Log) -> SectionResult:
    res = {"sizes": [], "noise": NOISE, "dim": DIM, "queries": plan.queries}
    million_seconds = 0.0
    for n in plan.sizes:
        started = time.perf_counter()
        entry = _guarded(scale_dense, n, settings, plan, tmp, log)
        entry["n"] = n
        gc.collect()
        entry["bm25"] = _guarded(scale_bm25, n, settings, plan, log)
        gc.collect()
        entry["seconds"] = round(time.perf_counter() - started, 1)
        if n >= 1_000_000 and plan.million:
            million_seconds += entry["seconds"]
        res["sizes"].append(entry)
    res["million_seconds"] = round(million_seconds, 1)
    return SectionResult("scaling", res, scaling_tables(res, settings, faiss_threads))

