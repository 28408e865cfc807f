"""One build scored on several backends side by side (``reportqa eval --backends faiss,milvus``)."""
from __future__ import annotations

from dataclasses import dataclass

from eval.errors import EvalError
from eval.harness import EvalQuestion, ModeReport, checked_questions, run_report
from eval.progress import Progress
from eval.report import COLUMNS
from settings import BackendName

BACKENDS = tuple(BackendName)


def backend_views(settings, names: list[str], progress: Progress | None = None) -> dict[str, object]:
    """The current build served by each named backend: the one it was built for as loaded, the other made from
    the same chunks and vectors (Milvus: synced into ``settings``' collection, a no-op when already there;
    FAISS: built in memory from the vectors read back from Milvus)."""
    from index import IndexUnavailable, load_current_index
    from index.backends import BackendUnavailable, backend_options, convert

    loaded = load_current_index(settings)
    views = {}
    try:
        for name in names:
            if name == loaded.backend.kind:
                views[name] = loaded
            else:
                views[name], _ = convert(loaded, name, backend_options(name, settings), settings.exact_search_max,
                                         progress)
    except BackendUnavailable as exc:
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


@dataclass
class BackendsRun:
    questions: list[EvalQuestion]
    build: str
    where: dict[str, str]  # backend -> where its index lives, in words
    reports: dict[str, list[ModeReport]]  # backend -> one report per mode


def compare_backends(settings, embedder, backends: list[str], modes: list[str], questions_path=None,
                     progress: Progress | None = None) -> BackendsRun:
    """Every mode on every backend over the same build; EvalError for an unknown backend name."""
    from index import open_retriever

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise EvalError(f"unknown backend {unknown[0]!r}; use {' or '.join(BACKENDS)}")
    views = backend_views(settings, list(dict.fromkeys(backends)), progress)
    first = next(iter(views.values()))
    questions = checked_questions(first, questions_path)
    by_backend: dict[str, list[ModeReport]] = {}
    for name, loaded in views.items():
        retriever = open_retriever(settings, embedder, loaded)
        by_backend[name], _ = run_report(retriever, questions, modes, progress, with_baseline=False)
    where = {name: (f"collection {loaded.manifest.get('collection')} at {loaded.manifest.get('uri')}"
                    if loaded.backend.kind == BackendName.MILVUS else "FAISS + bm25s in process")
             for name, loaded in views.items()}
    return BackendsRun(questions, first.manifest.get("build", ""), where, by_backend)
