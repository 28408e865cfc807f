"""Settings overrides measured on one QASPER file in one run (shared embeddings), beside the peer.

    python -m eval.qasper_sweep ../shared/benchmarks/qasper/qasper-train-v0.3.json --papers 60 [--json out.json]
    python -m eval.qasper_sweep FILE --papers 60 --only default,weight_sentence=0

Choose on the train file, confirm the chosen configuration on the dev file with ``reportqa eval
--compare``; the table is each configuration's evidence metrics filtered to the paper and the paired
RR@10 difference to the default (bootstrap 95% interval and p, :mod:`eval.compare`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from eval.compare import apply_overrides, compare_runs, scores_from_system
from eval.evidence import METRIC_NAMES
from eval.prototypes import prototype_factory

# The list of what is worth measuring, as settings overrides.
GRID: dict[str, dict] = {
    "default": {},
    "chunk_tokens=64": {"chunk_tokens": 64},
    "chunk_tokens=96": {"chunk_tokens": 96},
    "chunk_tokens=192": {"chunk_tokens": 192},
    "chunk_tokens=256": {"chunk_tokens": 256},
    "overlap=32": {"chunk_overlap_tokens": 32},
    "embed_context=none": {"embed_context": "none"},
    "embed_context=path": {"embed_context": "path"},
    "weight_sentence=0": {"weight_sentence": 0.0},
    "weight_sentence=0.5": {"weight_sentence": 0.5},
    "weight_sentence=2": {"weight_sentence": 2.0},
    "weight_dense=1.0": {"weight_dense": 1.0},
    "weight_dense=2.0": {"weight_dense": 2.0},
    "weight_bm25=1.5": {"weight_bm25": 1.5},
    "candidates=100": {"candidates": 100},
    "candidates=20": {"candidates": 20},
    "rrf_k=20": {"rrf_k": 20},
    "rrf_k=100": {"rrf_k": 100},
}


def parse_extra(spec: str) -> tuple[str, dict]:
    """``name=value[;name=value]`` -> (label, overrides), values read as JSON when they parse."""
    overrides = {}
    for part in spec.split(";"):
        key, _, value = part.partition("=")
        try:
            overrides[key.strip()] = json.loads(value)
        except ValueError:
            overrides[key.strip()] = value.strip()
    return spec, overrides


def main(argv: list[str] | None = None) -> int:
    from eval.qasper import run_qasper
    from eval.qasper_data import load_qasper
    from index import load_embedder
    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.qasper_sweep", description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--papers", type=int)
    parser.add_argument("--only", help="comma-separated grid names (default: the whole grid)")
    parser.add_argument("--extra", action="append", default=[], help="another configuration, e.g. "
                        "'chunk_tokens=192;weight_sentence=0.5'")
    parser.add_argument("--prototype", action="append", default=[], help="a prototype of eval/prototypes.py on "
                        "the default settings, e.g. 'dense-feedback:beta=0.5,m=3'")
    parser.add_argument("--library", action="store_true", help="also ask over the whole library")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--vector-store", metavar="DIR", help="keep passage vectors here between runs "
                        "(default <cache_dir>/eval-vectors)")
    args = parser.parse_args(argv)
    base = Settings()
    names = args.only.split(",") if args.only else list(GRID)
    grid = {n: GRID[n] if n in GRID else parse_extra(n)[1] for n in names}
    grid |= dict(parse_extra(e) for e in args.extra)
    if "default" not in grid:
        grid = {"default": {}} | grid
    configs = {n: apply_overrides(base, o, n) for n, o in grid.items()}
    configs |= {spec: base for spec in args.prototype}
    searchers = {spec: prototype_factory(spec) for spec in args.prototype}
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            print(f"  {stage}: {total} ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    report = run_qasper(Path(args.file), base, load_embedder(base, ingest=True), load_embedder(base),
                        args.papers, args.library, configs, progress,
                        vector_store=Path(args.vector_store) if args.vector_store else base.cache_dir / "eval-vectors",
                        searchers=searchers)
    questions = {q.id: q.question for p in load_qasper(Path(args.file), args.papers) for q in p.questions
                 if q.scorable}
    scores = {s.name: scores_from_system(s, questions) for s in report.systems}
    default = scores["default"]
    print(f"QASPER {Path(args.file).name}, first {report.papers} papers, {report.scorable} questions with text "
          f"evidence, filtered to the paper")
    print(f"{'configuration':<34}" + "".join(f"{m:>10}" for m in METRIC_NAMES)
          + f"{'keep-ans':>10}{'top5 chars':>11}{'ΔRR vs default [95%]':>28}{'p':>7}")
    rows = {}
    for s in report.systems:
        c = compare_runs(default, scores[s.name])
        bs = c.bootstrap
        na = s.no_answer
        print(f"{s.name:<34}" + "".join(f"{s.metrics[m]:>10.3f}" for m in METRIC_NAMES)
              + f"{na['answerable_kept']:>10.3f}{s.top5_chars:>11.0f}"
              + f"{bs.mean_difference:>+10.3f} [{bs.ci_low:+.3f}, {bs.ci_high:+.3f}]{bs.p_value:>7.3f}")
        rows[s.name] = {"metrics": s.metrics, "no_answer": na, "rr_difference": bs.mean_difference,
                        "ci": [bs.ci_low, bs.ci_high], "p": bs.p_value, "overrides": grid.get(s.name, {})}
    from eval.qasper import format_by_type, format_metric_table, format_no_answer

    ev = report.evidence
    print(f"\nevidence strings: {ev.paragraphs} paragraphs, {ev.float_selected} FLOAT SELECTED, {ev.section_names} "
          f"section names, {ev.not_found} not found; {ev.answerable_without_text_evidence} answerable questions "
          f"without text evidence; {report.all_unanswerable} unanswerable by every annotator")
    print("\nby answer type (default):\n" + format_by_type([report.systems[0], report.systems[-1]]))
    print("\nno-answer:\n" + format_no_answer(report.systems))
    if args.library:
        print(f"\nwhole library ({report.papers} papers):\n" + format_metric_table(report.systems, "library"))
    print(f"{time.perf_counter() - started:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps({"file": args.file, "papers": report.papers, "rows": rows,
                                               "report": report.to_json()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
