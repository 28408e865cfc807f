"""The no-answer model fitted on QASPER train plus the report's fit half, chosen on a held-back part of train.

    python -m eval.answerability_fit collect --qasper ../shared/benchmarks/qasper/qasper-train-v0.3.json \\
        --papers 30 --min-unanswerable 2 --out var/noanswer/train.jsonl
    python -m eval.answerability_fit collect --report fit --out var/noanswer/report-fit.jsonl
    python -m eval.answerability_fit fit var/noanswer/train.jsonl var/noanswer/report-fit.jsonl

``collect`` asks every question the way the product does (filtered to its paper for QASPER; the current
build for the report) and writes one JSON line per question: its features, whether it is answerable
and its group (the paper, or "report"). ``fit`` splits the QASPER rows by paper (a hash of the id) into
a fitting part and a choosing part, fits every candidate (feature set x L2 strength) on the fitting part
(plus the report's fit-half rows), picks the threshold there, and keeps the candidate that rejects the
most unanswerable questions of the choosing part while keeping >= ``min_keep`` of its answerable ones;
that candidate is then refitted on all the rows given and written to ``index/answerability.json`` with
what it was fitted and chosen on. Nothing here reads QASPER dev or the report's held-out half: they are
what the model is measured on (``reportqa eval --qasper dev``, ``reportqa eval``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index.answerability import FEATURE_SIGNS

ANSWERABILITY = Path(__file__).resolve().parent.parent / "index" / "answerability.json"
CHOOSE_SHARE = 0.3  # QASPER papers (by hash) held back from fitting to choose the candidate on
REPORT_GROUP = "report"
# Candidate feature sets. "shape" reads only the similarity and the look of the ranked lists (no word
# matching, so another word for the same thing cannot hurt); the others add the lexical and constraint checks.
SHAPE = ("top_dense", "best_sentence", "dense_margin", "dense_spread", "sentence_margin", "agreement", "fused_top")
CONSTRAINTS = ("name_missing", "quantity_unmet", "money_unmet", "count_unmet")
LEXICAL = ("missing_in_top", "missing_in_candidates", "missing_terms", "sentence_overlap")
FEATURE_SETS = {
    "similarity": ("top_dense", "best_sentence"),
    "shape": SHAPE,
    "shape+constraints": SHAPE + CONSTRAINTS,
    "shape+constraints+lexical": SHAPE + CONSTRAINTS + LEXICAL,
    "previous": ("top_dense", "best_sentence", "missing_terms") + CONSTRAINTS + ("missing_in_top",),
}
L2 = (0.01, 0.05, 0.2)


@dataclass(frozen=True)
class Row:
    id: str
    group: str  # the QASPER paper, or "report"
    source: str  # "qasper" or "report"
    answerable: bool
    features: dict[str, float]
    question: str = ""
    verdict: bool | None = None  # the product's no-answer verdict when collected (with the model then shipped)


# ------------------------------------------------------------------ collecting


def select_papers(every: list, papers: int, min_unanswerable: int = 0, limit: int | None = None) -> list:
    """The first ``papers`` papers and, with ``min_unanswerable``, the ``limit`` shortest later papers with at
    least that many unanswerable questions (they are ~10% of train, too few to fit on otherwise; the shortest,
    because embedding is what a run costs)."""
    rich = [p for p in every[papers:] if min_unanswerable and sum(q.unanswerable for q in p.questions)
            >= min_unanswerable]
    rich = sorted(rich, key=lambda p: sum(len(t) for t in p.paragraphs))[:limit]
    return every[:papers] + rich


def collect_qasper(path: Path, papers: int, min_unanswerable: int, limit: int | None, settings,
                   progress=None) -> list[Row]:
    """Rows for the papers :func:`select_papers` picks from ``path``."""
    import tempfile

    from eval.qasper import CachingEmbedder, QasperLibrary
    from eval.qasper_data import load_qasper
    from index import Query, load_embedder, open_retriever

    every = load_qasper(path)
    chosen = select_papers(every, papers, min_unanswerable, limit)
    cache = CachingEmbedder(load_embedder(settings, ingest=True), settings.cache_dir / "eval-vectors")
    rows = []
    with tempfile.TemporaryDirectory(prefix="reportqa-noanswer-") as folder:
        library = QasperLibrary(chosen, Path(folder))
        loaded, doc_of, _ = library.build(settings, cache, progress)
        retriever = open_retriever(settings, load_embedder(settings), loaded)
        retriever.all_features = True
        questions = [q for p in chosen for q in p.questions if q.paper_id in doc_of]
        for n, q in enumerate(questions, 1):
            result = retriever.search(Query(q.question, k=10, document=doc_of[q.paper_id]))
            rows.append(Row(q.id, q.paper_id, "qasper", not q.unanswerable, dict(result.features), q.question,
                            result.answerable))
            if progress:
                progress("ask", n, len(questions))
    return rows


def collect_report(split: str, settings) -> list[Row]:
    """Rows for the report's eval-set ``split`` half, asked of the current build."""
    from eval.harness import checked_questions
    from eval.splits import select
    from index import Query, load_current_index, load_embedder, open_retriever

    retriever = open_retriever(settings, load_embedder(settings), load_current_index(settings))
    retriever.all_features = True
    questions = select(checked_questions(retriever.index), split)
    rows = []
    for q in questions:
        result = retriever.search(Query(q.question, k=10))
        rows.append(Row(q.id, REPORT_GROUP, "report", q.answerable, dict(result.features), q.question,
                        result.answerable))
    return rows


def write_rows(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))


def read_rows(path: Path) -> list[Row]:
    return [Row(**json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------- fitting


@dataclass
class Fitted:
    names: tuple[str, ...]
    weights: np.ndarray  # on the raw features
    bias: float
    threshold: float = 0.5

    def scores(self, rows: list[Row]) -> np.ndarray:
        x = np.array([[r.features.get(n, 0.0) for n in self.names] for r in rows], dtype=np.float64)
        return 1 / (1 + np.exp(-np.clip(x @ self.weights + self.bias, -50, 50)))

    def to_json(self) -> dict:
        return {"weights": dict(zip(self.names, map(float, self.weights))), "bias": float(self.bias),
                "threshold": float(self.threshold)}


def source_weights(rows: list[Row]) -> np.ndarray:
    """Each source (QASPER, the report) carries half the total weight, whatever its number of rows."""
    sources = [r.source for r in rows]
    counts = {s: sources.count(s) for s in set(sources)}
    return np.array([len(rows) / (len(counts) * counts[s]) for s in sources])


def fit_logistic(rows: list[Row], names: tuple[str, ...], l2: float, steps: int = 4000) -> Fitted:
    """L2-regularised, source-weighted logistic regression (gradient descent on standardised features), each
    weight kept to its sign in FEATURE_SIGNS (projected), returned on the raw feature scale."""
    x = np.array([[r.features.get(n, 0.0) for n in names] for r in rows], dtype=np.float64)
    y = np.array([r.answerable for r in rows], dtype=np.float64)
    sw = source_weights(rows)
    # Class balance too: unanswerable questions are ~10% of QASPER, and the threshold is chosen afterwards.
    sw = sw * np.where(y == 1, 0.5 / max(np.average(y, weights=sw), 1e-9),
                       0.5 / max(1 - np.average(y, weights=sw), 1e-9))
    sw /= sw.mean()
    signs = np.array([FEATURE_SIGNS.get(n, 0) for n in names], dtype=np.float64)
    mu, sigma = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sigma
    w, b = np.zeros(len(names)), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (sw * (p - y)) / len(y) + l2 * w)
        w = np.where(signs * w < 0, 0.0, w)
        b -= 0.5 * float(np.mean(sw * (p - y)))
    return Fitted(names, w / sigma, b - float(np.sum(w * mu / sigma)))


def pick_threshold(scores: np.ndarray, rows: list[Row], min_keep: float) -> float:
    """The highest threshold that keeps >= ``min_keep`` of the answerable questions of every source."""
    limits = []
    for source in {r.source for r in rows}:
        kept = np.sort([s for s, r in zip(scores, rows) if r.source == source and r.answerable])
        if len(kept):
            limits.append(kept[int(np.floor((1 - min_keep) * len(kept)))])
    return float(min(limits)) if limits else 0.5


def rates(fitted: Fitted, rows: list[Row]) -> dict[str, float]:
    ok = fitted.scores(rows) >= fitted.threshold
    y = np.array([r.answerable for r in rows])
    return {"answerable": int(y.sum()), "unanswerable": int((~y).sum()),
            "answerable_kept": float(ok[y].mean()) if y.any() else 0.0,
            "unanswerable_rejected": float((~ok[~y]).mean()) if (~y).any() else 0.0}


def in_choosing_part(group: str) -> bool:
    return int(hashlib.sha256(f"noanswer-choose:{group}".encode()).hexdigest(), 16) % 1000 < CHOOSE_SHARE * 1000


def choose_and_fit(rows: list[Row], min_keep: float = 0.95) -> tuple[Fitted, dict]:
    """Fit every candidate on the fitting part, choose on the choosing part, refit the chosen one on all rows."""
    qasper_choose = [r for r in rows if r.source == "qasper" and in_choosing_part(r.group)]
    fitting = [r for r in rows if not (r.source == "qasper" and in_choosing_part(r.group))]
    table = {}
    for set_name, names in FEATURE_SETS.items():
        for l2 in L2:
            fitted = fit_logistic(fitting, names, l2)
            fitted.threshold = pick_threshold(fitted.scores(fitting), fitting, min_keep)
            table[f"{set_name} l2={l2}"] = {"fitting": rates(fitted, fitting), "choosing": rates(fitted, qasper_choose),
                                            "set": set_name, "l2": l2}

    def key(name):
        c = table[name]["choosing"]
        return (c["answerable_kept"] >= min_keep - 0.01, c["unanswerable_rejected"] + c["answerable_kept"])

    best = max(table, key=key)
    chosen = table[best]
    fitted = fit_logistic(rows, FEATURE_SETS[chosen["set"]], chosen["l2"])
    fitted.threshold = pick_threshold(fitted.scores(rows), rows, min_keep)
    return fitted, {"candidates": table, "chosen": best, "fitting_rows": len(fitting),
                    "choosing_rows": len(qasper_choose), "all_rows": rates(fitted, rows)}


def verdict_summary(rows: list[Row]) -> str:
    """The shipped model's verdicts on the rows: unanswerable rejected, answerable kept."""
    unans = [r for r in rows if not r.answerable]
    ans = [r for r in rows if r.answerable]
    rejected = sum(r.verdict is False for r in unans)
    kept = sum(bool(r.verdict) for r in ans)
    return (f"shipped model: rejects {rejected}/{len(unans)} unanswerable ({rejected / (len(unans) or 1):.3f}), "
            f"keeps {kept}/{len(ans)} answerable ({kept / (len(ans) or 1):.3f})")


def collected_fusion(settings) -> dict:
    """The fusion the collect steps read features under (a retriever's ``judge_weights``): the shipped model's,
    else the settings' ranking fusion. Stored in the fitted model, so a later change of the ranking weights
    does not move the features the model reads."""
    from index import FusionWeights, load_answerability

    shipped = load_answerability().fusion
    return asdict(shipped or FusionWeights.from_settings(settings))


def main(argv: list[str] | None = None) -> int:
    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.answerability_fit", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--qasper", metavar="FILE")
    c.add_argument("--papers", type=int, default=150)
    c.add_argument("--min-unanswerable", type=int, default=0, help="also every later paper with at least this "
                   "many unanswerable questions")
    c.add_argument("--limit", type=int, help="at most this many of those (the shortest)")
    c.add_argument("--report", choices=["fit", "heldout"], help="the report's fit half (to fit on) or held-out half "
                   "(to measure on: never give those rows to fit)")
    c.add_argument("--out", required=True)
    f = sub.add_parser("fit")
    f.add_argument("rows", nargs="+")
    f.add_argument("--min-keep", type=float, default=0.95)
    f.add_argument("--out", default=str(ANSWERABILITY))
    f.add_argument("--note", default="", help="how the rows were selected (stored in the model's provenance)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "collect":
        def progress(stage, done, total):
            if done == total or done % 200 == 0:
                print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)
        if bool(args.qasper) == bool(args.report):
            parser.error("collect takes one of --qasper FILE or --report fit")
        rows = (collect_qasper(Path(args.qasper), args.papers, args.min_unanswerable, args.limit, settings,
                               progress)
                if args.qasper else collect_report(args.report, settings))
        write_rows(rows, Path(args.out))
        print(f"wrote {len(rows)} rows ({sum(not r.answerable for r in rows)} unanswerable) to {args.out}")
        print(verdict_summary(rows))
        return 0
    rows = [r for path in args.rows for r in read_rows(Path(path))]
    fitted, info = choose_and_fit(rows, args.min_keep)
    for name, c in info["candidates"].items():
        ch, ft = c["choosing"], c["fitting"]
        print(f"{name:<36} fitting keeps {ft['answerable_kept']:.3f} rejects {ft['unanswerable_rejected']:.3f}   "
              f"choosing keeps {ch['answerable_kept']:.3f} rejects {ch['unanswerable_rejected']:.3f}")
    print(f"chosen: {info['chosen']}")
    model = fitted.to_json() | {"fusion": collected_fusion(settings), "fitted_on": {
        "files": args.rows, "selection": args.note, "rows": len(rows), "unanswerable": sum(not r.answerable for r in rows),
        "by_source": {s: sum(r.source == s for r in rows) for s in {r.source for r in rows}},
        "qasper_papers": len({r.group for r in rows if r.source == "qasper"}),
        "chosen": info["chosen"], "chosen_on": f"QASPER rows of the papers held back by hash ({CHOOSE_SHARE:.0%}): "
        f"{info['choosing_rows']} questions; the candidates were fitted on the other {info['fitting_rows']}",
        "min_keep": args.min_keep, "candidates": info["candidates"], "rates_on_all_rows": info["all_rows"],
        "not_fitted_on": "QASPER dev, the report's held-out half (what it is measured on)"}}
    Path(args.out).write_text(json.dumps(model, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
