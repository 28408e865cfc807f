"""Fit the hybrid fusion (RRF or convex weights, k, candidate depth) on a BEIR dataset's *train* queries.

    python -m eval.beir_fit ../shared/benchmarks/scifact [--split train] [--json out.json]

The product's own retriever is built once over the corpus (:func:`eval.beir.beir_retriever`, vectors
cached on disk), and each query's three lists — dense, BM25 and the candidates ranked by their best
sentence's cosine — are computed once per candidate depth with the retriever's own code. Every grid point
then only re-fuses those lists (the same weighted RRF or convex combination as
:meth:`index.Retriever.search`, vectorised over the queries), so the grid costs milliseconds per
configuration. The script reads the fit split only: it chooses on the train queries (and shows the
choice's two-fold estimate inside train: choose on one half, score on the other); the chosen settings are
then scored once on test with ``reportqa eval --beir DIR`` and the settings as REPORTQA_* overrides.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eval.beir import beir_retriever, default_vector_store, load_beir
from eval.metrics import dedupe, ndcg_at
from index import Query
from index.fusion import CONVEX, RRF, fused_order, min_max
from settings import RetrievalMode

# Weighted RRF is scale-free (all weights times c rank alike), so BM25's weight stays 1 and the others move.
DENSE = (0.5, 0.75, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0)
SENTENCE = (0.0, 0.5, 0.75, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0, 4.0)
RRF_K = (5, 10, 20, 30, 45, 60, 80, 100, 150)
# The convex combination is scale-free too (BM25 stays 1) and has no k.
CONVEX_DENSE = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
CONVEX_SENTENCE = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
# The BEIR runner asks for k=100 hits (recall@100), so the retriever fuses max(candidates, 100) per list there:
# other depths are measured with --depths but cannot be set for that runner.
DEPTHS = (100,)
CUTOFF = 10  # nDCG@10
MISSING = np.inf  # rank of a candidate absent from a list: adds w / (k + inf) = 0


@dataclass(frozen=True)
class Config:
    dense: float
    bm25: float
    sentence: float
    rrf_k: int
    depth: int  # candidates each list contributes (the product's ``candidates``)
    method: str = RRF  # or CONVEX (``rrf_k`` then plays no part)

    def overrides(self) -> dict[str, float | int | str]:
        return {"fusion": self.method, "weight_dense": self.dense, "weight_bm25": self.bm25,
                "weight_sentence": self.sentence, "rrf_k": self.rrf_k, "candidates": self.depth}


@dataclass
class Lists:
    """Every query's candidates at one depth, padded to one width: ranks in each list (inf = absent) and
    scores min-max normalised over the list's candidates (0 = absent), as :func:`index.fusion.convex_combination`."""

    ids: np.ndarray  # (queries, width) chunk positions, -1 = padding
    dense: np.ndarray  # (queries, width) rank from 1 or inf
    bm25: np.ndarray
    sentence: np.ndarray
    dense_norm: np.ndarray  # (queries, width) in [0, 1]
    bm25_norm: np.ndarray
    sentence_norm: np.ndarray
    relevant: np.ndarray  # (queries, width) bool: the candidate is a relevant document
    n_relevant: np.ndarray  # (queries,) relevant documents (for the ideal DCG)


def query_lists(retriever, question: str, depth: int, query_vector: np.ndarray | None = None):
    """One query's (dense, bm25, best-sentence) lists exactly as :meth:`Retriever.search` computes them."""
    expanded = retriever.acronyms.expand(question)
    if query_vector is None:
        query_vector = retriever.encode(expanded)
    ranking = retriever.index.backend.rank(expanded, query_vector, retriever.chunk_filter(Query(question)), depth)
    best = retriever._best_sentences(ranking.dense.keys() | ranking.bm25.keys(), query_vector)
    return ranking.dense, ranking.bm25, best


def collect(retriever, data, depths=DEPTHS, progress=None) -> dict[int, Lists]:
    """The lists of every query of ``data.qrels`` at each depth (each question encoded once)."""
    section = [c.section_id for c in retriever.index.chunks]
    rows: dict[int, list] = {d: [] for d in depths}
    qids = list(data.qrels)
    for n, qid in enumerate(qids, 1):
        question = data.queries[qid]
        vector = retriever.encode(retriever.acronyms.expand(question))
        for depth in depths:
            dense, bm25, best = query_lists(retriever, question, depth, vector)
            ids = sorted(dense.keys() | bm25.keys())
            by_sentence = {i: r for r, i in enumerate(sorted(best, key=lambda i: (-best[i][0], i)), 1)}
            normalised = [min_max({i: s for i, (_, s) in dense.items()}), min_max({i: s for i, (_, s) in
                          bm25.items()}), min_max({i: s for i, (s, _) in best.items()})]
            rows[depth].append((ids, [dense[i][0] if i in dense else MISSING for i in ids],
                                [bm25[i][0] if i in bm25 else MISSING for i in ids],
                                [by_sentence.get(i, MISSING) for i in ids],
                                [section[i] in data.qrels[qid] for i in ids], len(data.qrels[qid]),
                                *[[n.get(i, 0.0) for i in ids] for n in normalised]))
        if progress and (n % 50 == 0 or n == len(qids)):
            progress(n, len(qids))
    return {d: _pad(r) for d, r in rows.items()}


def _pad(rows: list) -> Lists:
    width = max(len(r[0]) for r in rows)

    def matrix(j: int, fill, dtype) -> np.ndarray:
        out = np.full((len(rows), width), fill, dtype=dtype)
        for q, r in enumerate(rows):
            out[q, :len(r[j])] = r[j]
        return out

    return Lists(matrix(0, -1, np.int64), matrix(1, MISSING, np.float64), matrix(2, MISSING, np.float64),
                 matrix(3, MISSING, np.float64), matrix(6, 0.0, np.float64), matrix(7, 0.0, np.float64),
                 matrix(8, 0.0, np.float64), matrix(4, False, bool), np.array([r[5] for r in rows]))


def ndcg_per_query(lists: Lists, config: Config) -> np.ndarray:
    """nDCG@10 of every query under ``config``: weighted RRF as ``index.fusion.weighted_rrf`` sums it (or the
    convex combination as ``convex_combination`` does), ties to the smaller chunk position (``fused_order``);
    padding sorts last."""
    if config.method == CONVEX:
        scores = config.dense * lists.dense_norm + config.bm25 * lists.bm25_norm
        if config.sentence:
            scores = scores + config.sentence * lists.sentence_norm
    else:
        k = config.rrf_k
        scores = config.dense / (k + lists.dense) + config.bm25 / (k + lists.bm25)
        if config.sentence:
            scores = scores + config.sentence / (k + lists.sentence)
    scores = np.where(lists.ids < 0, -np.inf, scores)
    ids = np.where(lists.ids < 0, np.iinfo(np.int64).max, lists.ids)
    order = np.lexsort((ids, -scores), axis=-1)[:, :CUTOFF]
    discounts = 1.0 / np.log2(np.arange(2, CUTOFF + 2))
    gains = np.take_along_axis(lists.relevant, order, axis=1) * discounts[:order.shape[1]]
    ideal = np.array([discounts[:min(n, CUTOFF)].sum() for n in lists.n_relevant])
    return gains.sum(axis=1) / ideal


def reference_ndcg(retriever, data, config: Config) -> float:
    """nDCG@10 of ``config`` through the retriever's own fusion (``_fuse`` + ``fused_order``), to check the
    vectorised grid against the product's code path."""
    from index.retriever import FusionWeights

    saved = retriever.weights
    retriever.weights = FusionWeights(config.dense, config.bm25, config.rrf_k, config.sentence, config.method)
    try:
        section = [c.section_id for c in retriever.index.chunks]
        total = 0.0
        for qid, relevant in data.qrels.items():
            dense, bm25, best = query_lists(retriever, data.queries[qid], config.depth)
            order = fused_order(retriever._fuse(RetrievalMode.HYBRID, dense, bm25, best))
            total += ndcg_at(dedupe([section[i] for i in order]), relevant, CUTOFF)
        return total / len(data.qrels)
    finally:
        retriever.weights = saved


def grid(bm25: float = 1.0, depths=DEPTHS, rrf_k: int = 5) -> list[Config]:
    """The RRF grid and the convex grid (which carries the product's ``rrf_k`` unused)."""
    weighted = [Config(d, bm25, s, k, depth) for depth, d, s, k in itertools.product(depths, DENSE, SENTENCE, RRF_K)]
    return weighted + [Config(d, bm25, s, rrf_k, depth, CONVEX)
                       for depth, d, s in itertools.product(depths, CONVEX_DENSE, CONVEX_SENTENCE)]


def evaluate_grid(lists: dict[int, Lists], configs: list[Config]) -> dict[Config, np.ndarray]:
    return {c: ndcg_per_query(lists[c.depth], c) for c in configs}


def two_fold(per_query: dict[Config, np.ndarray], default: Config) -> tuple[float, list[Config]]:
    """Choose on one half of the fit queries (even / odd positions), score on the other, both ways round:
    the mean out-of-half nDCG@10 estimates what choosing on train costs in optimism."""
    n = len(next(iter(per_query.values())))
    halves = [np.arange(n) % 2 == 0, np.arange(n) % 2 == 1]
    total, chosen = 0.0, []
    for fit, held in (halves, halves[::-1]):
        best = max(per_query, key=lambda c: (per_query[c][fit].mean(), -distance(c, default)))
        chosen.append(best)
        total += per_query[best][held].sum()
    return total / n, chosen


def distance(config: Config, default: Config) -> float:
    """How far a configuration is from the product default (ties go to the nearer one)."""
    return (abs(config.dense - default.dense) + abs(config.sentence - default.sentence)
            + abs(config.rrf_k - default.rrf_k) / 60 + (config.depth != default.depth)
            + (config.method != default.method))


def main(argv: list[str] | None = None) -> int:
    from index import load_embedder
    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.beir_fit", description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--split", default="train", help="the qrels split to fit on (default train)")
    parser.add_argument("--fields", choices=["multifield", "flat"], default="multifield")
    parser.add_argument("--depths", default=",".join(map(str, DEPTHS)), help="candidate depths (default 100)")
    parser.add_argument("--top", type=int, default=15, help="configurations to list (default 15)")
    parser.add_argument("--json", metavar="FILE", help="every configuration's nDCG@10 on the fit split")
    args = parser.parse_args(argv)
    if args.split == "test":
        parser.error("fit on train: the test split is for reporting the chosen configuration once")
    settings = Settings()
    started = time.perf_counter()

    shown: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        step = done * 10 // max(total, 1)  # every tenth of a stage
        if shown.get(stage) != step:
            shown[stage] = step
            print(f"  {stage}: {done}/{total} ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    folder = Path(args.folder)
    data = load_beir(folder, args.split)
    embedder = load_embedder(settings)
    retriever = beir_retriever(settings, embedder, args.fields, default_vector_store(settings, folder))(
        data.corpus, progress)
    depths = tuple(sorted({int(d) for d in args.depths.split(",")} | {100}))
    lists = collect(retriever, data, depths, progress=lambda d, n: progress(f"lists of {args.split} queries", d, n))
    # The BEIR runner asks for k=100 hits, so the product's depth there is max(candidates, 100).
    default = Config(settings.weight_dense, settings.weight_bm25, settings.weight_sentence, settings.rrf_k,
                     max(settings.candidates, 100), str(settings.fusion))
    no_sentence = Config(default.dense, default.bm25, 0.0, default.rrf_k, default.depth, default.method)
    configs = grid(settings.weight_bm25, depths, settings.rrf_k) + [default, no_sentence]
    per_query = evaluate_grid(lists, list(dict.fromkeys(configs)))
    mean = {c: float(v.mean()) for c, v in per_query.items()}
    check = reference_ndcg(retriever, data, default)
    if abs(check - mean[default]) > 1e-9:
        raise SystemExit(f"vectorised fusion {mean[default]:.6f} != the retriever's {check:.6f}")
    ranked = sorted(mean, key=lambda c: (-mean[c], distance(c, default)))
    print(f"BEIR {folder.name}, fit split {args.split!r}: {len(data.qrels)} queries, {len(per_query)} "
          f"configurations, BM25 {args.fields}; nDCG@10 (checked against the retriever's own fusion)")
    print(f"{'fusion':>7}{'dense':>7}{'bm25':>6}{'sent':>6}{'rrf_k':>7}{'depth':>7}{'nDCG@10':>10}")
    best_per_method = [next(c for c in ranked if c.method == m) for m in (RRF, CONVEX)]
    for c in dict.fromkeys([default, no_sentence] + best_per_method + ranked[:args.top]):
        print(f"{c.method:>7}{c.dense:>7}{c.bm25:>6}{c.sentence:>6}{c.rrf_k:>7}{c.depth:>7}{mean[c]:>10.4f}"
              + ("  (product default)" if c == default else ""))
    estimate, chosen = two_fold(per_query, default)
    print(f"\ntwo-fold inside {args.split}: choose on one half, score on the other: nDCG@10 {estimate:.4f} "
          f"(choices {', '.join(json.dumps(c.overrides()) for c in chosen)})")
    print(f"chosen on {args.split}: {json.dumps(ranked[0].overrides())}  ({time.perf_counter() - started:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "rows": [asdict(c) | {"ndcg@10": mean[c]}
                                                                             for c in ranked]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
