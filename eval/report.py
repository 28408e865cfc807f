"""Plain-text tables of eval results (what ``reportqa eval`` prints)."""
from __future__ import annotations

from eval.harness import QUESTION_TYPES, ModeReport

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


BEIR_COLUMNS = ["ndcg@10", "mrr@10", "recall@5", "recall@100"]


def format_beir(run) -> str:
    lines = [f"BEIR {run.name} ({run.split}, BM25 {run.fields}), {run.seconds:.0f}s",
             f"{'mode':<10}{'n':>5}" + "".join(f"{c:>12}" for c in BEIR_COLUMNS)]
    for mode, m in run.results.items():
        lines.append(f"{mode:<10}{int(m['n']):>5}" + "".join(f"{m[c]:>12.4f}" for c in BEIR_COLUMNS))
    return "\n".join(lines)
