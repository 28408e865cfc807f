"""A/B of two configurations (settings overrides) on the same questions in one run, with a paired test.

``reportqa eval --compare A.json B.json [--qasper FILE]``: each file is a JSON object of settings
overrides (``{"chunk_tokens": 200, "weight_sentence": 0.5}``). Both run on the same questions (QASPER
papers, or the bundled report's held-out half), beside the peer; printed: both, the difference, the
questions whose first-relevant rank changed, and two paired significance figures on the per-question
reciprocal rank (RR@10, 0 when nothing relevant is in the top 10):

* sign test: n = questions where RR differs, w = those where B is higher; two-sided exact binomial
  p = min(1, 2 · Σ_{i=0}^{min(w, n−w)} C(n, i) / 2^n) (p = 1 when n = 0);
* paired bootstrap: d_q = RR_B(q) − RR_A(q); resample the questions with replacement ``samples`` times
  (seeded), mean d* of each; 95% interval = the 2.5th/97.5th percentiles of d*; two-sided
  p = min(1, 2 · min(P(d* ≤ 0), P(d* ≥ 0))) (p = 1 when every d_q is 0).
"""
from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from eval.metrics import METRICS, dedupe, first_relevant_rank, mrr_at
from eval.peer import build_peer_index, peer_search
from index import build_index, load_current_index, open_retriever, Query
from ingest import Chunker, ingest_paths

Progress = Callable[[str, int, int], None]
QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"
BOOTSTRAP_SAMPLES = 10_000


class BadOverrides(ValueError):
    """A settings-overrides file that cannot be used; the message says why."""


# ------------------------------------------------------------ configurations


def load_overrides(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadOverrides(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise BadOverrides(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadOverrides(f"{path}: expected a JSON object of settings, e.g. {{\"chunk_tokens\": 200}}")
    return data


def apply_overrides(settings, overrides: dict, where: str = "overrides"):
    """``settings`` with ``overrides`` applied and validated (unknown names and bad values refused)."""
    from pydantic import ValidationError

    unknown = sorted(set(overrides) - set(type(settings).model_fields))
    if unknown:
        raise BadOverrides(f"{where}: unknown setting {unknown[0]!r} (`reportqa config` lists them)")
    try:
        return type(settings).model_validate({**settings.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadOverrides(f"{where}: bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


# --------------------------------------------------------- paired statistics


@dataclass(frozen=True)
class SignTest:
    wins: int  # questions where B's RR is higher
    losses: int
    ties: int
    p_value: float


@dataclass(frozen=True)
class Bootstrap:
    mean_difference: float  # mean of RR_B − RR_A
    ci_low: float
    ci_high: float
    p_value: float
    samples: int


def sign_test(a: Sequence[float], b: Sequence[float]) -> SignTest:
    """Exact two-sided sign test on paired values (formula in the module docstring)."""
    if len(a) != len(b):
        raise ValueError("paired values need the same length")
    # Python ints: numpy inputs would make these numpy integers, and 2 ** n overflows int64 past n = 62.
    wins = sum(bool(y > x) for x, y in zip(a, b))
    losses = sum(bool(y < x) for x, y in zip(a, b))
    n = wins + losses
    if n == 0:
        return SignTest(0, 0, len(a), 1.0)
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return SignTest(wins, losses, len(a) - n, min(1.0, 2 * tail))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0) -> Bootstrap:
    """Paired bootstrap of the mean difference b − a (formula in the module docstring)."""
    if len(a) != len(b):
        raise ValueError("paired values need the same length")
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if not len(d):
        return Bootstrap(0.0, 0.0, 0.0, 1.0, samples)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(samples, len(d)))].mean(axis=1)
    p = 1.0 if not d.any() else min(1.0, 2 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    return Bootstrap(float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)), p,
                     samples)


# ---------------------------------------------------------------- comparison


@dataclass
class RunScores:
    """One configuration's scores on a question set: mean metrics and each question's first rank and RR@10."""

    name: str
    metrics: dict[str, float]
    ranks: dict[str, int | None]
    reciprocal: dict[str, float]  # the paired measure per question: RR@10, or nDCG@10 for BEIR
    questions: dict[str, str] = field(default_factory=dict)  # id -> question text
    paired: str = "RR@10"  # the name of that measure


@dataclass(frozen=True)
class RankChange:
    id: str
    question: str
    rank_a: int | None
    rank_b: int | None


@dataclass
class Comparison:
    a: RunScores
    b: RunScores
    peer: RunScores | None
    difference: dict[str, float]  # B − A
    changes: list[RankChange]
    sign: SignTest
    bootstrap: Bootstrap


def compare_runs(a: RunScores, b: RunScores, peer: RunScores | None = None) -> Comparison:
    ids = [q for q in a.reciprocal if q in b.reciprocal]
    if len(ids) != len(a.reciprocal) or len(ids) != len(b.reciprocal):
        raise ValueError("A and B were not scored on the same questions")
    ra, rb = [a.reciprocal[q] for q in ids], [b.reciprocal[q] for q in ids]
    changes = [RankChange(q, a.questions.get(q, ""), a.ranks[q], b.ranks[q]) for q in ids if a.ranks[q] != b.ranks[q]]
    diff = {m: b.metrics[m] - a.metrics[m] for m in a.metrics if m in b.metrics and m != "n"}
    return Comparison(a, b, peer, diff, changes, sign_test(ra, rb), paired_bootstrap(ra, rb))


def scores_from_system(report, questions: dict[str, str]) -> RunScores:
    """A QASPER SystemReport as RunScores (questions with text evidence)."""
    scored = [q for q, o in report.outcomes.items() if q in questions]
    return RunScores(report.name, dict(report.metrics), {q: report.outcomes[q].rank for q in scored},
                     {q: report.outcomes[q].metrics["mrr@10"] for q in scored}, questions)


def _rank_text(rank: int | None) -> str:
    return str(rank) if rank else ">10"


def format_comparison(c: Comparison, limit: int = 30) -> str:
    names = [c.a.name, c.b.name] + ([c.peer.name] if c.peer else [])
    metrics = [m for m in c.a.metrics if m != "n"]
    lines = [f"{'metric':<14}" + "".join(f"{n[:12]:>13}" for n in names) + f"{'B − A':>10}"
             + "".join(f"{'Δ ' + n[:8] + ' peer':>16}" for n in names[:2] if c.peer)]
    for m in metrics:
        vals = [c.a.metrics[m], c.b.metrics[m]] + ([c.peer.metrics.get(m, 0.0)] if c.peer else [])
        row = f"{m:<14}" + "".join(f"{v:>13.3f}" for v in vals) + f"{c.difference[m]:>+10.3f}"
        if c.peer:
            row += "".join(f"{v - c.peer.metrics.get(m, 0.0):>+16.3f}" for v in vals[:2])
        lines.append(row)
    s, bs = c.sign, c.bootstrap
    lines += [
        "",
        f"paired, per-question {c.a.paired} ({len(c.a.reciprocal)} questions): mean B − A {bs.mean_difference:+.4f}, "
        f"bootstrap 95% [{bs.ci_low:+.4f}, {bs.ci_high:+.4f}], p = {bs.p_value:.3f} ({bs.samples} resamples); "
        f"sign test: B better on {s.wins}, worse on {s.losses}, tied {s.ties}, p = {s.p_value:.3f}",
        "",
        f"first-relevant rank changed on {len(c.changes)} question(s) (A -> B):",
    ]
    for ch in sorted(c.changes, key=lambda x: x.id)[:limit]:
        lines.append(f"  {ch.id[:14]:<14} {_rank_text(ch.rank_a):>3} -> {_rank_text(ch.rank_b):<3} {ch.question[:90]}")
    if len(c.changes) > limit:
        lines.append(f"  ... and {len(c.changes) - limit} more (--json has all)")
    return "\n".join(lines)


# ------------------------------------------------- the bundled report's eval set


@dataclass(frozen=True)
class ReportQuestion:
    id: str
    question: str
    type: str
    sections: tuple[str, ...]


def read_report_questions(path: Path = QUESTIONS) -> list[ReportQuestion]:
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(ReportQuestion(d["id"], d["question"], d["type"], tuple(d["sections"])))
    return out


def _score_sections(name: str, questions: list[ReportQuestion], ranked: dict[str, list[str]]) -> RunScores:
    answerable = [q for q in questions if q.sections]
    metrics = {m: float(np.mean([fn(dedupe(ranked[q.id]), set(q.sections)) for q in answerable]))
               for m, fn in METRICS.items()} | {"n": len(answerable)}
    ranks = {q.id: first_relevant_rank(dedupe(ranked[q.id])[:10], set(q.sections)) for q in answerable}
    rr = {q.id: mrr_at(dedupe(ranked[q.id]), set(q.sections), 10) for q in answerable}
    return RunScores(name, metrics, ranks, rr, {q.id: q.question for q in answerable})


def score_report_config(name: str, settings, passage_embedder, question_embedder, questions: list[ReportQuestion],
                        folder: Path, progress: Progress | None = None) -> tuple[RunScores, object]:
    """Ingest the settings' reports into a fresh index under ``folder`` and score the answerable questions at
    section level (chunks mapped to sections, deduplicated). Returns (scores, the ingest result)."""
    local = settings.model_copy(update={"index_dir": Path(tempfile.mkdtemp(prefix="index-", dir=folder))})
    result = ingest_paths(list(local.reports), Chunker.from_settings(local))
    if not result.chunks:
        raise BadOverrides(f"{name}: the reports produced no chunks")
    build_index(local, result, passage_embedder, progress)
    retriever = open_retriever(local, question_embedder, load_current_index(local))
    ranked = {}
    for n, q in enumerate(questions, 1):
        res = retriever.search(Query(q.question, k=50, mode=local.default_mode))
        ranked[q.id] = [h.chunk.section_id for h in res.hits]
        if progress:
            progress(f"ask {name}", n, len(questions))
    return _score_sections(name, questions, ranked), result


def score_report_peer(result, passage_embedder, questions: list[ReportQuestion]) -> RunScores:
    """The peer on the report: each recovered paragraph (a section's body span) one unit, owned by its section."""
    by_id = {d.id: d for d in result.documents}
    docs = [(s.id, [re.sub(r"\s+", " ", by_id[s.document_id].text[a:b]).strip() for a, b in s.body_spans])
            for s in result.sections if s.body_spans]
    index = build_peer_index(docs, passage_embedder)
    ranked = {}
    for q in questions:
        rows = peer_search(index, q.question, passage_embedder.encode_query(q.question), None, 50)
        ranked[q.id] = [index.units[r][0] for r in rows]
    return _score_sections("peer", questions, ranked)


# ------------------------------------------------------------------ the runs


def run_qasper_compare(path: Path, configs: dict[str, object], passage_embedder, question_embedder,
                       papers: int | None = None, with_library: bool = False, progress: Progress | None = None,
                       vector_store: Path | None = None):
    """Both configurations and the peer on one QASPER file's papers: (QasperReport, Comparison)."""
    from eval.qasper import run_qasper

    if len(configs) != 2:
        raise BadOverrides("--compare takes two configurations with different names")
    report = run_qasper(path, next(iter(configs.values())), passage_embedder, question_embedder, papers,
                        with_library, configs, progress, vector_store=vector_store)
    questions = {q.id: q.question for p in _papers_questions(path, papers) for q in p if q.scorable}
    a, b, peer = (scores_from_system(s, questions) for s in report.systems)
    return report, compare_runs(a, b, peer)


def run_beir_compare(folder: Path, configs: dict[str, object], question_embedder, split: str = "test",
                     vector_store: Path | None = None, progress: Progress | None = None) -> Comparison:
    """Both configurations (hybrid, their defaults) and the peer on a BEIR dataset's ``split``, paired on each
    query's nDCG@10; each configuration gets its own retriever (passage vectors shared through the store)."""
    from eval.beir import beir_retriever, load_beir, rank_queries, run_peer, score_beir
    from eval.metrics import ndcg_at

    if len(configs) != 2:
        raise BadOverrides("--compare takes two configurations with different names")
    data = load_beir(Path(folder), split)
    questions = {q: data.queries[q] for q in data.qrels}
    runs = []
    for name, config in configs.items():
        retriever = beir_retriever(config, question_embedder.sibling(config.encoder_backend),
                                   vector_store=vector_store)(data.corpus, progress)
        ranked = rank_queries(retriever, data, config.default_mode, progress=progress, label=name)
        metrics = score_beir(ranked, data.qrels)
        ranks = {q: first_relevant_rank(ranked[q][:10], data.qrels[q]) for q in data.qrels}
        ndcg = {q: ndcg_at(ranked[q], data.qrels[q], 10) for q in data.qrels}
        runs.append(RunScores(name, metrics, ranks, ndcg, questions, "nDCG@10"))
    peer = run_peer(data, question_embedder, vector_store, progress)
    return compare_runs(runs[0], runs[1], RunScores("peer", peer, {}, {}, questions, "nDCG@10"))


def _papers_questions(path: Path, papers: int | None):
    from eval.qasper_data import load_qasper

    return [p.questions for p in load_qasper(path, papers)]


def run_report_compare(configs: dict[str, object], passage_embedder, question_embedder, split: str,
                       progress: Progress | None = None) -> Comparison:
    """Both configurations and the peer on the bundled report's eval set (``split`` half), section level."""
    from eval.qasper import CachingEmbedder, ModelEmbedders
    from eval.splits import select

    if len(configs) != 2:
        raise BadOverrides("--compare takes two configurations with different names")
    questions = select(read_report_questions(), split)
    # B reuses A's sentence vectors when both use one model at one precision; another model_path gets its own.
    models = ModelEmbedders(CachingEmbedder(passage_embedder), question_embedder, None)
    with tempfile.TemporaryDirectory(prefix="reportqa-compare-") as folder:
        runs, result = [], None
        for name, config in configs.items():
            scores, result = score_report_config(name, config, *models.for_config(config), questions, Path(folder),
                                                 progress)
            runs.append(scores)
        peer = score_report_peer(result, models.peer(), questions)  # bundled MiniLM, fp32: a fixed reference
    return compare_runs(runs[0], runs[1], peer)
