"""The QASPER runner: the product's real pipeline on NLP papers, scored at evidence level beside the peer.

``reportqa eval --qasper FILE [--papers N] [--library]``. Every paper of FILE is rendered to Markdown
in a temporary folder (:func:`eval.qasper_data.render_markdown`), ingested with the normal
``ingest_paths`` + ``Chunker`` and indexed with ``build_index`` into a temporary index: one library,
one document per paper. Each question is asked filtered to its paper (``Query.document``) and, with
``library``, over the whole library. A passage is a hit when its [char_start, char_end) overlaps a
gold evidence paragraph of an annotator (metrics: :mod:`eval.evidence`). The peer recipe
(:mod:`eval.peer`) runs on the same papers and questions in the same run.

Fit on the train file, choose and report on the dev file: the runner reads whichever file it is given
and says which.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from eval.evidence import METRIC_NAMES, first_covering_rank, mean_metrics, question_metrics
from eval.peer import PEER_DEPTH, build_peer_index, peer_search
from eval.qasper_data import (ANSWER_TYPES, AnnotatorAgreement, EvidenceCounts, QasperInputError, QasperPaper,
                              QasperQuestion, annotator_agreement, load_qasper, render_markdown)
from index import BuildSettings, Query, build_index, load_current_index, open_retriever
from ingest import Chunker, ingest_paths
from settings import EncoderEngine, engine_precision

__all__ = ["QasperInputError", "QasperLibrary", "QasperReport", "SystemReport", "QuestionOutcome",
           "CachingEmbedder", "evaluate_reportqa", "evaluate_peer", "run_qasper", "format_report"]

Progress = Callable[[str, int, int], None]
DEPTH = 10  # passages scored per question (MRR@10, nDCG@10)


@dataclass(frozen=True)
class QuestionOutcome:
    id: str
    type: str
    rank: int | None  # first passage covering gold evidence, within DEPTH
    metrics: dict[str, float]
    answerable: bool | None = None  # the no-answer verdict (None: the system has none)
    library_rank: int | None = None
    right_paper_first: bool | None = None
    library_metrics: dict[str, float] = field(default_factory=dict)  # asked over the whole library


@dataclass
class SystemReport:
    name: str
    metrics: dict[str, float]  # filtered to the paper, questions with text evidence
    by_type: dict[str, dict[str, float]]
    no_answer: dict[str, float]
    library: dict[str, float] = field(default_factory=dict)  # over the whole library (with --library)
    outcomes: dict[str, QuestionOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    top5_chars: float = 0.0  # mean characters a reader gets in the top 5 passages (filtered): the cost of a hit


@dataclass
class QasperReport:
    file: str
    papers: int
    questions: int
    scorable: int
    all_unanswerable: int
    evidence: EvidenceCounts
    not_ingested: list[str]
    systems: list[SystemReport]  # ReportQA configuration(s) first, the peer last
    settings: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    annotators: AnnotatorAgreement | None = None  # the human reference for the no-answer figures

    def to_json(self) -> dict:
        return asdict(self)


class CachingEmbedder:
    """An embedder that encodes each distinct text once per run (builds with other chunking settings and
    the peer share sentence and paragraph vectors). Every other attribute is the wrapped embedder's.

    With ``store`` (a folder) the vectors are also kept on disk between runs, keyed by the model's
    fingerprint and each text's SHA-256 (``<fingerprint>[-int8].npy`` + ``.keys.json``, written
    atomically, read without pickle): a development loop over the same papers embeds them once. fp32 and
    int8 vectors are kept apart (:meth:`for_engine` gives the cache of another precision)."""

    def __init__(self, inner, store: Path | None = None):
        self._inner = inner
        self._others: dict[str, CachingEmbedder] = {}
        self._cache: dict[str, np.ndarray] = {}
        self._stored: dict[str, np.ndarray] = {}
        self._store = Path(store) if store else None
        if self._store:
            self._stored = self._read()

    def _files(self) -> tuple[Path, Path]:
        base = self._store / (self._inner.fingerprint + ("" if self.precision == "fp32" else f"-{self.precision}"))
        return base.with_suffix(".npy"), base.with_suffix(".keys.json")

    def _read(self) -> dict[str, np.ndarray]:
        vectors_path, keys_path = self._files()
        try:
            vectors, keys = np.load(vectors_path, allow_pickle=False), json.loads(keys_path.read_text())
        except (OSError, ValueError):
            return {}
        return dict(zip(keys, vectors)) if len(keys) == len(vectors) else {}

    def _save(self) -> None:
        """Write the store, keeping what another run added since this one read it (last writer merges)."""
        self._store.mkdir(parents=True, exist_ok=True)
        vectors_path, keys_path = self._files()
        self._stored = self._read() | self._stored
        keys = list(self._stored)
        tmp = vectors_path.with_suffix(f".tmp-{os.getpid()}.npy")
        np.save(tmp, np.stack([self._stored[k] for k in keys]), allow_pickle=False)
        tmp_keys = keys_path.with_suffix(f".tmp-{os.getpid()}")
        tmp_keys.write_text(json.dumps(keys))
        os.replace(tmp, vectors_path)
        os.replace(tmp_keys, keys_path)

    def _lookup(self, texts: list[str]) -> None:
        for t in texts:
            if t not in self._cache and self._stored:
                hit = self._stored.get(hashlib.sha256(t.encode()).hexdigest())
                if hit is not None:
                    self._cache[t] = hit

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @property
    def precision(self) -> str:
        return getattr(self._inner, "precision", "fp32")

    def for_engine(self, engine: str) -> "CachingEmbedder":
        """This cache, or (kept for the run) one over the same model on ``engine`` when that engine makes
        vectors of another precision: a configuration with int8 passages beside an fp32 one."""
        precision = engine_precision(engine)
        if precision == self.precision:
            return self
        if precision not in self._others:
            self._others[precision] = CachingEmbedder(self._inner.sibling(engine), self._store)
        return self._others[precision]

    def full_precision(self) -> "CachingEmbedder":
        """The fp32 cache: what the peer and other references encode with, whatever the passages use."""
        return self.for_engine(EncoderEngine.ONNX)

    def encode(self, texts: list[str], batch_size: int = 32, progress=None) -> np.ndarray:
        self._lookup(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._inner.encode(missing, batch_size, progress)
            self._cache.update(zip(missing, vectors))
            if self._store and len(missing) > 1:
                self._stored.update((hashlib.sha256(t.encode()).hexdigest(), v) for t, v in zip(missing, vectors))
                self._save()
        elif progress:
            progress(len(texts), len(texts))
        out = np.empty((len(texts), self._inner.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self._cache[t]
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


class QasperLibrary:
    """The papers rendered as Markdown files in ``folder``; one index build per set of build settings."""

    def __init__(self, papers: list[QasperPaper], folder: Path):
        self.papers = papers
        self.folder = Path(folder)
        self.source = self.folder / "papers"
        self.source.mkdir(parents=True, exist_ok=True)
        self.rendered = {}
        for paper in papers:
            rendered = render_markdown(paper)
            (self.source / f"{paper.id}.md").write_text(rendered.text)
            self.rendered[paper.id] = rendered
        self._builds: dict[tuple[BuildSettings, str, str], tuple[object, dict[str, str], list[str]]] = {}

    def build(self, settings, passage_embedder, progress: Progress | None = None):
        """(loaded index, paper id -> document id, papers not ingested) for these settings' chunking and the
        passage encoder's model and precision (configurations that differ only in retrieval share a build)."""
        key = (BuildSettings.from_settings(settings), passage_embedder.fingerprint, passage_embedder.precision)
        if key not in self._builds:
            local = settings.model_copy(update={"index_dir": self.folder / f"index-{len(self._builds)}"})
            result = ingest_paths([self.source], Chunker.from_settings(local),
                                  (lambda n, total, _p: progress("ingest papers", n, total)) if progress else None)
            if not result.chunks:
                raise QasperInputError("no paper could be ingested")
            build_index(local, result, passage_embedder, progress)
            loaded = load_current_index(local)
            doc_of = {Path(d.path).stem: d.id for d in result.documents}
            self._builds[key] = (loaded, doc_of, sorted(Path(f.path).stem for f in result.failures))
        return self._builds[key]

    def chunk_covers(self, loaded, doc_of: dict[str, str]) -> list[frozenset]:
        """Per chunk position: the (paper, paragraph) units whose span its [char_start, char_end) overlaps."""
        paper_of = {doc: paper for paper, doc in doc_of.items()}
        out = []
        for c in loaded.chunks:
            paper = paper_of.get(c.document_id)
            spans = self.rendered[paper].spans if paper else ()
            ends = [e for _, e in spans]
            starts = [s for s, _ in spans]
            lo, hi = bisect.bisect_right(ends, c.char_start), bisect.bisect_left(starts, c.char_end)
            out.append(frozenset((paper, j) for j in range(lo, hi)))
        return out


def _questions(papers: list[QasperPaper]) -> list[QasperQuestion]:
    return [q for p in papers for q in p.questions]


def _summarise(name: str, questions: list[QasperQuestion], outcomes: dict[str, QuestionOutcome],
               seconds: float) -> SystemReport:
    scored = [q for q in questions if q.scorable]
    by_type = {}
    for t in ANSWER_TYPES:
        subset = [outcomes[q.id].metrics for q in scored if q.type == t]
        if subset:
            by_type[t] = mean_metrics(subset)
    unans = [q for q in questions if q.unanswerable]
    ans = [q for q in questions if not q.unanswerable]
    verdict = {q.id: outcomes[q.id].answerable for q in questions}
    has_verdict = all(v is not None for v in verdict.values())
    no_answer = {
        "unanswerable": len(unans), "answerable": len(ans),
        "unanswerable_rejected": (sum(not verdict[q.id] for q in unans) / len(unans) if unans else 0.0)
        if has_verdict else 0.0,
        "answerable_kept": (sum(bool(verdict[q.id]) for q in ans) / len(ans) if ans else 0.0)
        if has_verdict else 1.0,
    }
    library = {}
    if scored and outcomes[scored[0].id].right_paper_first is not None:
        library = mean_metrics([outcomes[q.id].library_metrics for q in scored]) | {
            "right_paper_first": sum(bool(outcomes[q.id].right_paper_first) for q in scored) / len(scored)}
    return SystemReport(name, mean_metrics([outcomes[q.id].metrics for q in scored]), by_type, no_answer, library,
                        outcomes, seconds)


def _outcome(q: QasperQuestion, covers: list[frozenset], answerable: bool | None,
             library_covers: list[frozenset] | None, top_paper: str | None) -> QuestionOutcome:
    library_rank, library_metrics = None, {}
    if library_covers is not None:
        library_metrics = question_metrics(library_covers, q.evidence)
        library_rank = first_covering_rank(library_covers, q.relevant)
    return QuestionOutcome(q.id, q.type, first_covering_rank(covers, q.relevant), question_metrics(covers, q.evidence),
                           answerable, library_rank, None if library_covers is None else top_paper == q.paper_id,
                           library_metrics)


def evaluate_reportqa(library: QasperLibrary, settings, passage_embedder, question_embedder, name: str = "ReportQA",
                      mode: str | None = None, with_library: bool = False,
                      progress: Progress | None = None, searcher=None) -> tuple[SystemReport, list[str]]:
    """ReportQA with ``settings`` on the library's questions: (report, papers not ingested).
    ``searcher``: a function Retriever -> object with ``search`` and ``chunk_position`` (a prototype from
    :mod:`eval.prototypes`), to measure an idea before it moves into index/."""
    started = time.perf_counter()
    loaded, doc_of, failed = library.build(settings, passage_embedder, progress)
    retriever = open_retriever(settings, question_embedder, loaded)
    if searcher is not None:
        retriever = searcher(retriever)
    covers_of = library.chunk_covers(loaded, doc_of)
    paper_of = {doc: paper for paper, doc in doc_of.items()}
    mode = mode or settings.default_mode
    questions = _questions(library.papers)
    outcomes, chars = {}, []
    for n, q in enumerate(questions, 1):
        doc = doc_of.get(q.paper_id)
        covers, answerable = [], None
        if doc is not None:
            result = retriever.search(Query(q.question, k=DEPTH, mode=mode, document=doc))
            covers = [covers_of[retriever.chunk_position[h.chunk.id]] for h in result.hits]
            answerable = result.answerable
            chars.append(sum(len(h.chunk.text) for h in result.hits[:5]))
        library_covers, top_paper = None, None
        if with_library:
            result = retriever.search(Query(q.question, k=DEPTH, mode=mode))
            library_covers = [covers_of[retriever.chunk_position[h.chunk.id]] for h in result.hits]
            top_paper = paper_of.get(result.hits[0].chunk.document_id) if result.hits else None
        outcomes[q.id] = _outcome(q, covers, bool(answerable) if doc is not None else False, library_covers,
                                  top_paper)
        if progress:
            progress(f"ask {name}", n, len(questions))
    report = _summarise(name, questions, outcomes, time.perf_counter() - started)
    report.top5_chars = float(np.mean(chars)) if chars else 0.0
    return report, failed


def evaluate_peer(library: QasperLibrary, passage_embedder, with_library: bool = False,
                  progress: Progress | None = None) -> SystemReport:
    """The peer recipe (:mod:`eval.peer`) on the same papers and questions."""
    started = time.perf_counter()
    index = build_peer_index([(p.id, p.paragraphs) for p in library.papers], passage_embedder, progress=progress)
    questions = _questions(library.papers)
    vectors = passage_embedder.encode([q.question for q in questions])
    outcomes, chars = {}, []
    paragraphs = {p.id: p.paragraphs for p in library.papers}
    for n, (q, qv) in enumerate(zip(questions, vectors), 1):
        rows = peer_search(index, q.question, qv, q.paper_id, DEPTH)
        covers = [frozenset([index.units[r]]) for r in rows]
        chars.append(sum(len(paragraphs[index.units[r][0]][index.units[r][1]]) for r in rows[:5]))
        library_covers, top_paper = None, None
        if with_library:
            rows = peer_search(index, q.question, qv, None, DEPTH, PEER_DEPTH)
            library_covers = [frozenset([index.units[r]]) for r in rows]
            top_paper = index.units[rows[0]][0] if rows else None
        outcomes[q.id] = _outcome(q, covers, None, library_covers, top_paper)
        if progress:
            progress("ask peer", n, len(questions))
    report = _summarise("peer", questions, outcomes, time.perf_counter() - started)
    report.top5_chars = float(np.mean(chars)) if chars else 0.0
    return report


class ModelEmbedders:
    """Each configuration's passage cache and question encoder, for *its* model: the run's own, or for another
    ``model_path`` (a compare of a fine-tuned model) encoders loaded once for that folder, so no configuration
    is scored with another model's vectors. The peer always encodes with the bundled MiniLM (its recipe)."""

    def __init__(self, passages: CachingEmbedder, questions, store: Path | None):
        self._passages, self._questions, self._store = passages, questions, store
        self._loaded: dict[str, tuple[CachingEmbedder, object]] = {}
        self._peer: CachingEmbedder | None = None

    def for_config(self, config) -> tuple["CachingEmbedder", object]:
        passages, questions = self._passages, self._questions
        model = str(Path(config.resolved_model_path).resolve())
        if model != str(Path(passages.model_path).resolve()):
            if model not in self._loaded:
                from index import load_embedder

                self._loaded[model] = (CachingEmbedder(load_embedder(config, ingest=True), self._store),
                                       load_embedder(config))
            passages, questions = self._loaded[model]
        return passages.for_engine(config.ingest_encoder_backend), questions.sibling(config.encoder_backend)

    def peer(self) -> "CachingEmbedder":
        from settings import bundled_model_path

        bundled = str(Path(bundled_model_path()).resolve())
        if bundled == str(Path(self._passages.model_path).resolve()):
            return self._passages.full_precision()
        if self._peer is None:
            from index import Embedder

            own = self._passages
            self._peer = CachingEmbedder(Embedder(bundled, own.threads, EncoderEngine.ONNX, own.cache_dir), self._store)
        return self._peer


def run_qasper(path: Path, settings, passage_embedder, question_embedder, papers: int | None = None,
               with_library: bool = False, configurations: dict[str, object] | None = None,
               progress: Progress | None = None, workdir: Path | None = None,
               vector_store: Path | None = None, searchers: dict | None = None) -> QasperReport:
    """Every configuration (name -> settings; default: ``settings`` as "ReportQA") and the peer, one run.
    ``vector_store``: a folder keeping passage vectors between runs (see :class:`CachingEmbedder`)."""
    started = time.perf_counter()
    loaded_papers = load_qasper(Path(path), papers)
    configurations = configurations or {"ReportQA": settings}
    models = ModelEmbedders(CachingEmbedder(passage_embedder, vector_store), question_embedder, vector_store)
    folder = Path(tempfile.mkdtemp(prefix="reportqa-qasper-", dir=workdir))
    try:
        library = QasperLibrary(loaded_papers, folder)
        systems, failed = [], set()
        for name, config in configurations.items():
            passages, questions = models.for_config(config)
            report, missing = evaluate_reportqa(library, config, passages, questions, name,
                                                with_library=with_library, progress=progress,
                                                searcher=(searchers or {}).get(name))
            systems.append(report)
            failed.update(missing)
        systems.append(evaluate_peer(library, models.peer(), with_library, progress))  # a fixed reference
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    questions = _questions(loaded_papers)
    evidence = sum((p.evidence for p in loaded_papers), EvidenceCounts())
    first = next(iter(configurations.values()))
    return QasperReport(
        str(path), len(loaded_papers), len(questions), sum(q.scorable for q in questions),
        sum(q.unanswerable for q in questions), evidence, sorted(failed), systems,
        {k: v for k, v in first.public_dict().items() if k in _SHOWN_SETTINGS},
        {"total": time.perf_counter() - started} | {s.name: s.seconds for s in systems},
        annotator_agreement(questions))


_SHOWN_SETTINGS = ("chunk_tokens", "chunk_overlap_tokens", "embed_context", "candidates", "fusion", "rrf_k",
                   "weight_dense", "weight_bm25", "weight_sentence", "bm25_k1", "bm25_b", "encoder_backend",
                   "ingest_encoder_backend", "sentence_vectors", "default_mode")


# -------------------------------------------------------------------- printing


def _row(label: str, values: list[float], fmt: str = ".3f", width: int = 11) -> str:
    return f"{label:<22}" + "".join(f"{v:>{width}{fmt}}" for v in values)


def format_metric_table(systems: list[SystemReport], key: str = "metrics") -> str:
    """Metrics of each system, the peer's column, and each system's difference to the peer."""
    peer = systems[-1]
    ours = systems[:-1]
    header = f"{'metric':<22}" + "".join(f"{s.name[:10]:>11}" for s in systems) + "".join(
        f"{'Δ ' + s.name[:8]:>11}" for s in ours)
    lines = [header]
    for m in METRIC_NAMES + (("right_paper_first",) if key == "library" else ()):
        vals = [getattr(s, key).get(m, 0.0) for s in systems]
        lines.append(_row(m, vals + [v - getattr(peer, key).get(m, 0.0) for v in vals[:-1]]))
    if key == "metrics":
        vals = [s.top5_chars for s in systems]
        lines.append(_row("chars in top 5", vals + [v - peer.top5_chars for v in vals[:-1]], ".0f"))
    return "\n".join(lines)


def format_by_type(systems: list[SystemReport], metrics=("hit@1", "hit@5", "mrr@10")) -> str:
    ours, peer = systems[0], systems[-1]
    lines = [f"{'type':<14}{'n':>5}" + "".join(f"{ours.name[:8] + ' ' + m:>17}{'peer ' + m:>13}{'Δ':>8}"
                                             for m in metrics)]
    for t, values in ours.by_type.items():
        p = peer.by_type.get(t, {})
        lines.append(f"{t:<14}{int(values['n']):>5}" + "".join(
            f"{values[m]:>17.3f}{p.get(m, 0.0):>13.3f}{values[m] - p.get(m, 0.0):>+8.3f}" for m in metrics))
    return "\n".join(lines)


def format_no_answer(systems: list[SystemReport]) -> str:
    lines = []
    for s in systems:
        na = s.no_answer
        if s.name == "peer":
            lines.append(f"  peer: no no-answer signal (keeps every question: rejects 0.000, keeps 1.000)")
            continue
        lines.append(f"  {s.name}: rejects {na['unanswerable_rejected']:.3f} of {na['unanswerable']} all-unanswerable,"
                     f" keeps {na['answerable_kept']:.3f} of {na['answerable']} answerable")
    return "\n".join(lines)


def format_report(report: QasperReport) -> str:
    ev = report.evidence
    lines = [
        f"QASPER {Path(report.file).name}: {report.papers} papers, {report.questions} questions "
        f"({report.scorable} with text evidence, {report.all_unanswerable} unanswerable by every annotator)",
        f"evidence strings: {ev.paragraphs} paragraphs, {ev.float_selected} FLOAT SELECTED (captions, not in the "
        f"text), {ev.section_names} section names, {ev.not_found} not found; {ev.answerable_without_text_evidence} "
        f"answerable questions have no text evidence (not ranked; counted for no-answer)",
        "settings: " + ", ".join(f"{k}={v}" for k, v in report.settings.items()),
        "peer: paragraphs, MiniLM fp32 + bm25s defaults, RRF k=60, exact inner product",
    ]
    if report.not_ingested:
        lines.append(f"papers not ingested (their questions score 0): {', '.join(report.not_ingested)}")
    lines += ["", f"filtered to the paper ({report.scorable} questions):", format_metric_table(report.systems),
              "", "by answer type:", format_by_type(report.systems), "", "no-answer:", format_no_answer(report.systems)]
    if report.annotators and report.annotators.unanswerable:
        a = report.annotators
        lines.append(f"  a second annotator (read the whole paper; leave one annotator out, {a.judgements} judgements):"
                     f" rejects {a.rejected:.3f} of {a.unanswerable} the others all marked unanswerable,"
                     f" keeps {a.kept:.3f}")
    if report.systems[0].library:
        lines += ["", f"whole library ({report.papers} papers):", format_metric_table(report.systems, "library")]
    lines.append(f"\n{report.seconds['total']:.0f}s")
    return "\n".join(lines)

