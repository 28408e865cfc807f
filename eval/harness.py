"""The eval harness: score retrieval per mode at section level, against a naive baseline, and list misses.

``reportqa eval`` runs it on ``eval/questions.jsonl``. Chunks are mapped to their sections and
deduplicated before scoring, so five chunks of one section count once. Around it: BEIR runs
(:mod:`eval.beir`), no-answer calibration (:mod:`eval.calibration`), one build on several backends
(:mod:`eval.backend_views`), tables (:mod:`eval.report`) and the benchmark (:mod:`eval.bench`).
"""
from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.errors import EvalSetError
from eval.metrics import dedupe, first_relevant_rank, score_run
from eval.progress import Progress
from index import Query, Retriever

EVAL_DIR = Path(__file__).resolve().parent
QUESTIONS = EVAL_DIR / "questions.jsonl"
BASELINE = EVAL_DIR / "baseline.json"
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


def run_report(retriever: Retriever, questions: list[EvalQuestion], modes: list[str], progress: Progress | None = None,
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


def checked_questions(index, path: Path | None = None) -> list[EvalQuestion]:
    """The eval set (default ``eval/questions.jsonl``), refused with EvalSetError when it does not fit ``index``."""
    questions = load_questions(path or QUESTIONS)
    problems = validate_questions(questions, index)
    if problems:
        raise EvalSetError(f"eval set has {len(problems)} problem(s), first: {problems[0]}")
    return questions


def read_baseline(split: str = "all") -> dict:
    """The committed baseline of ``split`` (eval/splits.py names the file); EvalSetError when there is none."""
    from eval.splits import baseline_file

    path = baseline_file(split)
    if not path.is_file():
        raise EvalSetError(f"no baseline for the {split} split ({path.name})")
    return json.loads(path.read_text())


def write_baseline(reports: list[ModeReport], split: str = "all") -> Path:
    from eval.splits import baseline_file

    path = baseline_file(split)
    path.write_text(json.dumps(baseline_snapshot(reports), indent=2) + "\n")
    return path

