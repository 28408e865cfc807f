"""The eval harness: score retrieval per mode at section level, against a naive baseline, and list misses.

``reportqa eval`` runs it on ``eval/questions.jsonl`` (or ``--beir DIR``).
Chunks are mapped to their sections and deduplicated before scoring, so
five chunks of one section count once.
"""
from __future__ import annotations

import gzip
import json
import math
import re
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eval.metrics import METRICS, dedupe, first_relevant_rank, score_run
from index import MODES, Query, Retriever

EVAL_DIR = Path(__file__).resolve().parent
QUESTIONS = EVAL_DIR / "questions.jsonl"
BASELINE = EVAL_DIR / "baseline.json"
ANSWERABILITY = EVAL_DIR.parent / "index" / "answerability.json"
BASELINE_TOLERANCE = 0.005
QUESTION_TYPES = ("fact", "paraphrase", "concept", "acronym", "multi", "typo", "fragment", "unanswerable")


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    type: str
    sections: tuple[str, ...]
    evidence: str

    @property
    def answerable(self) -> bool:
        return bool(self.sections)


@dataclass
class Miss:
    id: str
    question: str
    expected: list[str]
    returned: list[str]
    rank: int | None


@dataclass
class ModeReport:
    mode: str
    metrics: dict[str, float]
    by_type: dict[str, dict[str, float]]
    no_answer: dict[str, float] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)
    seconds: float = 0.0


def load_questions(path: Path = QUESTIONS) -> list[EvalQuestion]:
    questions = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        if data["type"] not in QUESTION_TYPES:
            raise ValueError(f"{path}:{n}: unknown question type {data['type']!r}")
        questions.append(EvalQuestion(data["id"], data["question"], data["type"], tuple(data["sections"]),
                                      data.get("evidence", "")))
    return questions


def section_texts(index) -> dict[str, str]:
    """Each section's clean text (its chunks joined), keyed by section id."""
    texts: dict[str, list[str]] = defaultdict(list)
    for c in index.chunks:
        texts[c.section_id].append(c.text)
    return {k: " ".join(v) for k, v in texts.items()}


def validate_questions(questions: list[EvalQuestion], index) -> list[str]:
    """Problems with the eval set: unknown sections, evidence not found in an expected section."""
    texts = section_texts(index)
    known = {s.id for s in index.sections}
    problems = []
    ids = [q.id for q in questions]
    if len(ids) != len(set(ids)):
        problems.append("duplicate question ids")
    for q in questions:
        for s in q.sections:
            if s not in known:
                problems.append(f"{q.id}: unknown section {s}")
        if q.answerable:
            evidence = re.sub(r"\s+", " ", q.evidence).strip()
            if not evidence or not any(evidence in texts.get(s, "") for s in q.sections):
                problems.append(f"{q.id}: evidence not found in {', '.join(q.sections)}: {q.evidence!r}")
        elif q.evidence:
            problems.append(f"{q.id}: unanswerable question with evidence")
    return problems


# ------------------------------------------------------------------ report eval


def ranked_sections(retriever: Retriever, question: str, mode: str, depth: int) -> tuple[list[str], object]:
    result = retriever.search(Query(question, k=depth, mode=mode))
    return dedupe([h.chunk.section_id for h in result.hits]), result


def evaluate_mode(retriever: Retriever, questions: list[EvalQuestion], mode: str, depth: int = 50,
                  progress=None) -> tuple[ModeReport, dict[str, dict]]:
    started = time.perf_counter()
    run: dict[str, list[str]] = {}
    details: dict[str, dict] = {}
    answerable_flags: dict[str, bool] = {}
    for n, q in enumerate(questions, 1):
        ranked, result = ranked_sections(retriever, q.question, mode, depth)
        run[q.id] = ranked
        answerable_flags[q.id] = result.answerable
        details[q.id] = {"features": result.features, "confidence": result.confidence, "ranked": ranked}
        if progress:
            progress(f"eval {mode}", n, len(questions))
    report = score_questions(mode, questions, run)
    report.no_answer = no_answer_rates(questions, answerable_flags)
    report.seconds = time.perf_counter() - started
    return report, details


def score_questions(mode: str, questions: list[EvalQuestion], run: dict[str, list[str]]) -> ModeReport:
    answerable = [q for q in questions if q.answerable]
    qrels = {q.id: set(q.sections) for q in answerable}
    by_type = {}
    for t in QUESTION_TYPES:
        subset = {q.id: set(q.sections) for q in answerable if q.type == t}
        if subset:
            by_type[t] = score_run(run, subset) | {"n": len(subset)}
    misses = []
    for q in answerable:
        ranked = run.get(q.id, [])
        rank = first_relevant_rank(ranked, set(q.sections))
        if rank != 1:
            misses.append(Miss(q.id, q.question, list(q.sections), ranked[:3], rank))
    return ModeReport(mode, score_run(run, qrels) | {"n": len(qrels)}, by_type, misses=misses)


def no_answer_rates(questions: list[EvalQuestion], predicted: dict[str, bool]) -> dict[str, float]:
    unans = [q for q in questions if not q.answerable]
    ans = [q for q in questions if q.answerable]
    rejected = sum(not predicted[q.id] for q in unans)
    kept = sum(predicted[q.id] for q in ans)
    return {
        "unanswerable_rejected": rejected / len(unans) if unans else 0.0,
        "answerable_kept": kept / len(ans) if ans else 0.0,
        "accuracy": (rejected + kept) / len(questions) if questions else 0.0,
    }


def naive_baseline(retriever: Retriever, questions: list[EvalQuestion], depth: int = 50) -> ModeReport:
    """The report split on blank lines into paragraphs, embedded as is, dense search only, same model."""
    index = retriever.index
    paragraphs, owners = [], []
    for doc in index.documents.values():
        sections = sorted((s for s in index.sections if s.document_id == doc.id), key=lambda s: -s.level)
        for m in re.finditer(r"\S(?:.*?\S)??(?=\n[ \t]*\n|\s*\Z)", doc.text, flags=re.S):
            owner = next((s.id for s in sections if s.char_start <= m.start() < s.char_end), "(none)")
            paragraphs.append(m.group(0))
            owners.append(owner)
    vectors = retriever.embedder.full_precision().encode(paragraphs, 32)  # as an index's passages are
    run = {}
    for q in questions:
        qv = retriever.embedder.encode_query(q.question)
        order = np.argsort(-(vectors @ qv))[:depth]
        run[q.id] = dedupe([owners[i] for i in order])
    return score_questions("naive-baseline", questions, run)


# ---------------------------------------------------------------- calibration


def fit_answerability(features: list[dict[str, float]], labels: list[bool], min_keep: float = 0.95) -> dict:
    """L2-regularised logistic regression on retrieval features, each weight kept to its sign in
    ``FEATURE_SIGNS``; threshold chosen to keep ≥ ``min_keep`` of answerable questions while rejecting
    as many unanswerable ones as possible."""
    from index.answerability import FEATURE_SIGNS

    names = sorted(features[0])
    signs = np.array([FEATURE_SIGNS.get(n, 0) for n in names], dtype=np.float64)
    x = np.array([[f[n] for n in names] for f in features], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    mu, sigma = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sigma
    w, b = np.zeros(len(names)), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / len(y) + 0.05 * w
        grad_b = float(np.mean(p - y))
        w -= 0.5 * grad_w
        w = np.where(signs * w < 0, 0.0, w)  # projected: a weight of the wrong sign becomes 0
        b -= 0.5 * grad_b
    probs = 1 / (1 + np.exp(-(z @ w + b)))
    threshold = _pick_threshold(probs, y, min_keep)
    raw_w = w / sigma
    raw_b = b - float(np.sum(w * mu / sigma))
    return {"weights": dict(zip(names, map(float, raw_w))), "bias": raw_b, "threshold": threshold}


def _pick_threshold(scores: np.ndarray, y: np.ndarray, min_keep: float) -> float:
    best, best_key = 0.5, (-1.0, -1.0)
    for t in sorted(set(np.round(scores, 6))):
        keep = float(np.mean(scores[y == 1] >= t)) if (y == 1).any() else 0.0
        reject = float(np.mean(scores[y == 0] < t)) if (y == 0).any() else 0.0
        key = (float(keep >= min_keep), reject + keep)
        if key > best_key:
            best, best_key = float(t), key
    return best


def cross_validated_rates(features, labels, folds: int = 5, min_keep: float = 0.95) -> dict[str, float]:
    """Rates of the fitted model on questions it was not fitted on (k-fold), the honest estimate."""
    n = len(labels)
    order = np.random.default_rng(0).permutation(n)
    predicted = np.zeros(n, dtype=bool)
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        model = fit_answerability([features[i] for i in train], [labels[i] for i in train], min_keep)
        for i in test:
            z = model["bias"] + sum(model["weights"][k] * features[i][k] for k in model["weights"])
            predicted[i] = 1 / (1 + math.exp(-max(-50, min(50, z)))) >= model["threshold"]
    y = np.array(labels)
    return {"unanswerable_rejected": float(np.mean(~predicted[~y])), "answerable_kept": float(np.mean(predicted[y]))}


def cosine_only_rates(features, labels, min_keep: float = 0.95) -> dict[str, float]:
    """The weak reference: a threshold on the top dense cosine alone."""
    scores = np.array([f["top_dense"] for f in features])
    y = np.array(labels, dtype=float)
    t = _pick_threshold(scores, y, min_keep)
    return {"threshold": t, "unanswerable_rejected": float(np.mean(scores[y == 0] < t)),
            "answerable_kept": float(np.mean(scores[y == 1] >= t))}


# ---------------------------------------------------------------------- BEIR


def run_beir(folder: Path, retriever_factory, modes: list[str], split: str = "test", progress=None) -> dict:
    """Score a BEIR dataset (one passage per document) with the same retrieval code and metrics."""
    corpus_path = folder / "corpus.jsonl"
    opener = open
    if not corpus_path.exists():
        corpus_path, opener = folder / "corpus.jsonl.gz", gzip.open
    with opener(corpus_path, "rt") as fh:
        corpus = [json.loads(line) for line in fh]
    queries = {}
    with open(folder / "queries.jsonl") as fh:
        for line in fh:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, set[str]] = defaultdict(set)
    with open(folder / "qrels" / f"{split}.tsv") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[qid].add(did)
    retriever = retriever_factory(corpus, progress)
    results = {}
    for mode in modes:
        run = {}
        for n, qid in enumerate(qrels, 1):
            res = retriever.search(Query(queries[qid], k=100, mode=mode))
            run[qid] = [h.chunk.section_id for h in res.hits]
            if progress:
                progress(f"beir {mode}", n, len(qrels))
        scores = score_run(run, dict(qrels))
        scores["recall@100"] = float(np.mean([len(set(run[q][:100]) & rel) / len(rel) for q, rel in qrels.items()]))
        results[mode] = scores | {"n": len(qrels)}
    return results


def beir_retriever(settings, embedder, fields: str = "multifield"):
    """A Retriever over a BEIR corpus built in memory with the product's own index classes.

    ``fields="multifield"`` gives BM25 title and body as separate fields whose scores add up, the
    setup behind the published BM25 baselines (BEIR's Elasticsearch runs, Pyserini's "multifield");
    ``"flat"`` indexes "title body" as one text, as the dense model sees it (Pyserini's "flat")."""
    from index.backends import FaissBackend
    from index.dense import DenseIndex
    from index.lexical import FieldedLexicalIndex, LexicalIndex
    from index.retriever import FusionWeights
    from index.store import LoadedIndex
    from ingest import Chunk, Document

    def build(corpus, progress):
        texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
        chunks = [Chunk(id=f"{i:08x}", document_id="beir", section_id=d["_id"], section_title=d.get("title", ""),
                        section_path=(), ordinal=0, text=t, embed_text=t, char_start=0, char_end=len(t), tokens=0,
                        model_tokens=0) for i, (d, t) in enumerate(zip(corpus, texts))]
        if fields == "multifield":
            lexical = FieldedLexicalIndex.build([[d.get("title", "") for d in corpus], [d["text"] for d in corpus]],
                                                settings.bm25_k1, settings.bm25_b)
        else:
            lexical = LexicalIndex.build(texts, settings.bm25_k1, settings.bm25_b)
        vectors = embedder.full_precision().encode(  # passages at full precision, as ingest encodes them
            texts, 64, (lambda d, n: progress("embed corpus", d, n)) if progress else None)
        loaded = LoadedIndex(
            build_dir=Path("."), manifest={}, chunks=chunks, sections=[],
            documents={"beir": Document("beir", "", "BEIR", "", "", "text")},
            backend=FaissBackend(DenseIndex.build(vectors, settings.exact_search_max),
                                 lexical),
            sentence_vectors=np.zeros((0, vectors.shape[1]), dtype=np.float16),
            sentence_offsets=np.zeros(len(chunks) + 1, dtype=np.int64), acronyms={},
        )
        weights = FusionWeights(settings.weight_dense, settings.weight_bm25, settings.rrf_k, settings.weight_sentence)
        return Retriever(loaded, embedder, weights, candidates=max(settings.candidates, 100))

    return build


# ------------------------------------------------------------------- printing

COLUMNS = ["hit@1", "hit@5", "recall@5", "mrr@10", "ndcg@10"]


def format_table(reports: list[ModeReport]) -> str:
    lines = [f"{'mode':<16}{'n':>5}" + "".join(f"{c:>10}" for c in COLUMNS) + f"{'reject-unans':>14}{'keep-ans':>10}"]
    for r in reports:
        na = r.no_answer
        lines.append(f"{r.mode:<16}{int(r.metrics['n']):>5}" + "".join(f"{r.metrics[c]:>10.3f}" for c in COLUMNS)
                     + (f"{na['unanswerable_rejected']:>14.3f}{na['answerable_kept']:>10.3f}" if na else f"{'-':>14}{'-':>10}"))
    return "\n".join(lines)


def format_by_type(reports: list[ModeReport], metric_names=("hit@1", "hit@5", "mrr@10")) -> str:
    types = [t for t in QUESTION_TYPES if any(t in r.by_type for r in reports)]
    header = f"{'type':<12}{'n':>4}" + "".join(f"{r.mode + ' ' + m:>{max(14, len(r.mode) + len(m) + 2)}}"
                                              for r in reports for m in metric_names)
    lines = [header]
    for t in types:
        n = next(int(r.by_type[t]["n"]) for r in reports if t in r.by_type)
        row = f"{t:<12}{n:>4}"
        for r in reports:
            for m in metric_names:
                width = max(14, len(r.mode) + len(m) + 2)
                row += f"{r.by_type.get(t, {}).get(m, float('nan')):>{width}.3f}"
        lines.append(row)
    return "\n".join(lines)


def format_misses(report: ModeReport, limit: int) -> str:
    lines = [f"misses in {report.mode} (expected section not ranked first): {len(report.misses)}"]
    for m in report.misses[:limit]:
        rank = f"rank {m.rank}" if m.rank else "not in top 50"
        lines.append(f"  {m.id} [{rank}] {m.question}\n      expected {', '.join(m.expected)}; got {', '.join(m.returned)}")
    return "\n".join(lines)


# ------------------------------------------------------------------------ CLI


def run_report(retriever: Retriever, questions: list[EvalQuestion], modes: list[str], progress=None,
               with_baseline: bool = True) -> tuple[list[ModeReport], dict]:
    reports, details = [], {}
    for mode in modes:
        report, detail = evaluate_mode(retriever, questions, mode, progress=progress)
        reports.append(report)
        details[mode] = detail
    if with_baseline:
        reports.append(naive_baseline(retriever, questions))
    return reports, details


def check_baseline(reports: list[ModeReport], baseline: dict) -> list[str]:
    """Metrics that fell below the committed baseline (beyond a rounding tolerance)."""
    drops = []
    for r in reports:
        for name, value in baseline.get(r.mode, {}).items():
            now = r.no_answer.get(name, r.metrics.get(name)) if name not in r.metrics else r.metrics[name]
            if now is not None and now < value - BASELINE_TOLERANCE:
                drops.append(f"{r.mode} {name}: {now:.3f} < baseline {value:.3f}")
    return drops


def baseline_snapshot(reports: list[ModeReport]) -> dict:
    snap = {}
    for r in reports:
        if r.mode == "naive-baseline":
            continue
        snap[r.mode] = {k: round(v, 4) for k, v in r.metrics.items() if k != "n"}
        snap[r.mode] |= {k: round(v, 4) for k, v in r.no_answer.items() if k != "accuracy"}
    return snap


def run_cli(args, settings) -> int:
    from index import load_current_index, load_embedder, open_retriever
    from service.cli import CliError, Progress

    progress = Progress(getattr(args, "quiet", False))
    modes = args.mode or list(MODES)
    embedder = load_embedder(settings)
    if args.beir:
        folder = Path(args.beir)
        if not (folder / "queries.jsonl").is_file():
            raise CliError(f"{folder} is not a BEIR dataset folder (queries.jsonl missing)", 2)
        started = time.perf_counter()
        fields = getattr(args, "beir_fields", "multifield")
        split = args.split or "test"
        results = run_beir(folder, beir_retriever(settings, embedder, fields), modes, split, progress)
        print(f"BEIR {folder.name} ({split}, BM25 {fields}), {time.perf_counter() - started:.0f}s")
        cols = ["ndcg@10", "mrr@10", "recall@5", "recall@100"]
        print(f"{'mode':<10}{'n':>5}" + "".join(f"{c:>12}" for c in cols))
        for mode, m in results.items():
            print(f"{mode:<10}{int(m['n']):>5}" + "".join(f"{m[c]:>12.4f}" for c in cols))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0

    backends = [b.strip() for b in (getattr(args, "backends", None) or "").split(",") if b.strip()]
    if backends:  # --- milvus backend (issue 7): the same build on each backend, side by side ---
        return run_backends_cli(args, settings, embedder, backends, modes, progress)

    retriever = open_retriever(settings, embedder, load_current_index(settings))
    questions = load_questions(Path(args.questions) if args.questions else QUESTIONS)
    problems = validate_questions(questions, retriever.index)
    if problems:
        raise CliError(f"eval set has {len(problems)} problem(s), first: {problems[0]}", 3)
    # issue 15: report the held-out half unless told otherwise; fit only on the fit half.
    from eval.splits import DEFAULT_SPLIT, SplitError, baseline_file, select

    split = args.split or DEFAULT_SPLIT
    if args.write_baseline and args.check_baseline:
        raise CliError("--write-baseline and --check-baseline in one run: a run never rewrites the baseline it checks", 2)
    try:
        fit_half, questions = select(questions, "fit"), select(questions, split)
    except SplitError as exc:
        raise CliError(str(exc), 3) from None
    if args.calibrate:
        _, details = run_report(retriever, fit_half, ["hybrid"], progress, with_baseline=False)
        feats = [details["hybrid"][q.id]["features"] for q in fit_half]
        labels = [q.answerable for q in fit_half]
        model = fit_answerability(feats, labels)
        cv = cross_validated_rates(feats, labels)
        cos = cosine_only_rates(feats, labels)
        model["fitted_on"] = {"questions": len(fit_half), "file": "eval/questions.jsonl", "split": "fit",
                              "cross_validated": cv, "cosine_only": cos}
        ANSWERABILITY.write_text(json.dumps(model, indent=2) + "\n")
        print(f"wrote {ANSWERABILITY.relative_to(EVAL_DIR.parent)}; 5-fold CV: rejects "
              f"{cv['unanswerable_rejected']:.2f} of unanswerable, keeps {cv['answerable_kept']:.2f} of answerable; "
              f"top-cosine threshold alone: rejects {cos['unanswerable_rejected']:.2f}, keeps {cos['answerable_kept']:.2f}")
        from index import load_answerability

        retriever.answerability = load_answerability()

    reports, _ = run_report(retriever, questions, modes, progress)
    print(f"eval set, {split} split: {len(questions)} questions ({sum(q.answerable for q in questions)} answerable), "
          f"section-level metrics, chunks mapped to sections and deduplicated\n")
    print(format_table(reports))
    print("\nby question type:")
    print(format_by_type(reports))
    for r in reports:
        if r.mode != "naive-baseline" and args.misses:
            print()
            print(format_misses(r, args.misses))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in reports], indent=2))
    if args.write_baseline:
        baseline_file(split).write_text(json.dumps(baseline_snapshot(reports), indent=2) + "\n")
        print(f"\nwrote {baseline_file(split).name}")
    if args.check_baseline:
        if not baseline_file(split).is_file():
            raise CliError(f"no baseline for the {split} split ({baseline_file(split).name})", 3)
        return _report_drops(check_baseline(reports, json.loads(baseline_file(split).read_text())),
                             f" (eval/{baseline_file(split).name})")
    return 0


def _report_drops(drops: list[str], where: str) -> int:
    """Print metrics below the committed baseline; the exit code says whether there were any."""
    for d in drops:
        print(f"below baseline: {d}", file=sys.stderr)
    if not drops:
        print(f"\nall metrics at or above the baseline{where}")
    return 1 if drops else 0


# ------------------------------------------------ backends side by side (issue 7)

BACKENDS = ("faiss", "milvus")


def backend_views(settings, names: list[str], progress=None) -> dict[str, object]:
    """The current build served by each named backend: the one it was built for as loaded, the other made from
    the same chunks and vectors (Milvus: synced into ``settings``' collection, a no-op when already there;
    FAISS: built in memory from the vectors read back from Milvus)."""
    from index import load_current_index, milvus_target
    from index.milvus import faiss_from_loaded, milvus_from_loaded

    from index import IndexUnavailable
    from index.milvus import MilvusUnavailable

    loaded = load_current_index(settings)
    views = {}
    try:
        for name in names:
            if name == loaded.backend.kind:
                views[name] = loaded
            elif name == "milvus":
                views[name], _ = milvus_from_loaded(loaded, milvus_target(settings), settings.exact_search_max,
                                                    progress)
            else:
                views[name] = faiss_from_loaded(loaded, settings.exact_search_max)
    except MilvusUnavailable as exc:
        raise IndexUnavailable(str(exc)) from None
    return views


def format_backends_table(by_backend: dict[str, list[ModeReport]], questions: int) -> str:
    """One row per (mode, backend), backends of a mode next to each other, then the difference to the first."""
    names = list(by_backend)
    lines = [f"{'mode':<10}{'backend':<9}{'n':>4}" + "".join(f"{c:>10}" for c in COLUMNS)
             + f"{'reject-unans':>14}{'keep-ans':>10}{'ms/query':>10}"]
    modes = [r.mode for r in by_backend[names[0]]]
    for mode in modes:
        rows = {b: next(r for r in by_backend[b] if r.mode == mode) for b in names}
        for b, r in rows.items():
            na = r.no_answer
            lines.append(f"{mode:<10}{b:<9}{int(r.metrics['n']):>4}" + "".join(f"{r.metrics[c]:>10.3f}" for c in COLUMNS)
                         + (f"{na['unanswerable_rejected']:>14.3f}{na['answerable_kept']:>10.3f}" if na else f"{'-':>14}{'-':>10}")
                         + f"{1000 * r.seconds / max(questions, 1):>10.1f}")
        first = rows[names[0]]
        for b in names[1:]:
            r = rows[b]
            diff = "".join(f"{r.metrics[c] - first.metrics[c]:>+10.3f}" for c in COLUMNS)
            na = (f"{r.no_answer['unanswerable_rejected'] - first.no_answer['unanswerable_rejected']:>+14.3f}"
                  f"{r.no_answer['answerable_kept'] - first.no_answer['answerable_kept']:>+10.3f}") if r.no_answer else ""
            lines.append(f"{'':<10}{'Δ ' + b:<9}{'':>4}" + diff + na)
    return "\n".join(lines)


def run_backends_cli(args, settings, embedder, backends: list[str], modes: list[str], progress) -> int:
    """``reportqa eval --backends faiss,milvus``: every mode on every backend over the same build."""
    from index import open_retriever
    from service.cli import CliError

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise CliError(f"unknown backend {unknown[0]!r}; use {' or '.join(BACKENDS)}", 2)
    if args.calibrate or args.write_baseline:
        raise CliError("--calibrate and --write-baseline take one backend; drop --backends", 2)
    views = backend_views(settings, list(dict.fromkeys(backends)), progress)
    questions = load_questions(Path(args.questions) if args.questions else QUESTIONS)
    first = next(iter(views.values()))
    problems = validate_questions(questions, first)
    if problems:
        raise CliError(f"eval set has {len(problems)} problem(s), first: {problems[0]}", 3)
    by_backend: dict[str, list[ModeReport]] = {}
    for name, loaded in views.items():
        retriever = open_retriever(settings, embedder, loaded)
        by_backend[name], _ = run_report(retriever, questions, modes, progress, with_baseline=False)
    print(f"eval set: {len(questions)} questions ({sum(q.answerable for q in questions)} answerable), "
          f"section-level metrics, one build ({first.manifest.get('build', '')}) on each backend")
    for name, loaded in views.items():
        where = (f"collection {loaded.manifest.get('collection')} at {loaded.manifest.get('uri')}"
                 if loaded.backend.kind == "milvus" else "FAISS + bm25s in process")
        print(f"  {name}: {where}")
    print()
    print(format_backends_table(by_backend, len(questions)))
    for name, reports in by_backend.items():
        hybrid = [r for r in reports if r.mode == "hybrid"]
        if hybrid and args.misses:
            print(f"\n[{name}] " + format_misses(hybrid[0], args.misses))
    if args.json:
        Path(args.json).write_text(json.dumps({b: [asdict(r) for r in rs] for b, rs in by_backend.items()}, indent=2))
    if args.check_baseline:
        baseline = json.loads(BASELINE.read_text())
        drops = [f"{b} {d}" for b, rs in by_backend.items() for d in check_baseline(rs, baseline)]
        return _report_drops(drops, " on every backend")
    return 0
