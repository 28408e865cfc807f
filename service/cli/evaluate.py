"""``reportqa eval``: the eval set per mode (or a BEIR dataset, or one build on several backends)."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from service.cli.common import EXIT_INPUT, EXIT_USAGE, CliError, Progress, settings_from
from settings import RetrievalMode

EXAMPLES = ("examples:\n  reportqa eval\n  reportqa eval --mode hybrid --json out.json\n"
            "  reportqa eval --beir ../shared/benchmarks/scifact\n  reportqa eval --backends faiss,milvus\n"
            "  reportqa eval --structure ../shared/corpora/real [--json]\n"
            "  reportqa eval --qasper ../shared/benchmarks/qasper/qasper-dev-v0.3.json --papers 30 --library\n"
            "  reportqa eval --compare a.json b.json --qasper ../shared/benchmarks/qasper/qasper-train-v0.3.json")


def register(add) -> None:
    p = add("eval", "Score retrieval on the eval set (or a BEIR dataset) and list the misses.", run, EXAMPLES)
    p.add_argument("--mode", action="append", choices=list(RetrievalMode), help="mode(s) to score (default all)")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="also write the full results as JSON (with --structure: print JSON instead of the table)")
    p.add_argument("--structure", metavar="DIR", help="score recovered section trees against the outline.json "
                   "of every document in DIR (e.g. ../shared/corpora/real); needs no model or index")
    p.add_argument("--without-bookmarks", action="store_true",
                   help="--structure: score each PDF once more, read as if it had no bookmarks (font headings)")
    p.add_argument("--beir", metavar="DIR", help="a BEIR-format dataset folder instead of the report eval set")
    p.add_argument("--split", help="eval set half: heldout (default), fit or all; BEIR: qrels split (default test)")
    p.add_argument("--qasper", metavar="FILE", help="a QASPER JSON file: ingest its papers as one library and "
                   "score evidence retrieval beside the paragraph-RRF peer")
    p.add_argument("--papers", type=int, metavar="N", help="--qasper: only the first N papers")
    p.add_argument("--library", action="store_true", help="--qasper: also ask every question over the whole library")
    p.add_argument("--vector-store", metavar="DIR", help="--qasper, --beir: keep passage vectors here between runs "
                   "(a development loop over the same papers embeds them once; --beir default: "
                   "<cache_dir>/beir-vectors/<dataset>)")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="A/B two settings-override files on "
                   "the same questions (with --qasper: its papers; else the eval set's --split)")
    p.add_argument("--beir-fields", choices=["multifield", "flat"], default="multifield",
                   help="BEIR BM25: title and body as separate fields, scores summed, as in the published "
                        "baselines (default), or one flat text")
    p.add_argument("--questions", metavar="FILE", help="eval set file (default eval/questions.jsonl)")
    p.add_argument("--check-baseline", action="store_true",
                   help="exit 1 if a metric falls below the split's committed baseline (eval/baseline-SPLIT.json)")
    p.add_argument("--write-baseline", action="store_true", help="store these metrics as the new baseline")
    p.add_argument("--calibrate", action="store_true", help="fit the no-answer model on the eval set's fit half "
                   "only and save it (replaces the shipped model, which `python -m eval.answerability_fit` fits on "
                   "QASPER train plus the fit half)")
    p.add_argument("--misses", type=int, default=20, help="misses to list per mode (default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--backends", metavar="LIST", help="score the current build on each backend side by side, "
                   "e.g. faiss,milvus (default: the one it was built for)")
    p.add_argument("--milvus-uri", metavar="URI", help="Milvus Lite file (*.db) or http://host:19530 for --backends")
    p.add_argument("--milvus-collection", metavar="NAME", help="Milvus collection for --backends")


def run(args) -> int:
    from index import MODES, load_embedder

    if args.structure:
        return _structure(args)
    if args.json == "-":
        raise CliError("--json needs a FILE here (only --structure prints JSON)", EXIT_USAGE)
    if (args.papers or args.library) and not args.qasper:
        raise CliError("--papers and --library go with --qasper FILE", EXIT_USAGE)
    if args.vector_store and not (args.qasper or args.beir):
        raise CliError("--vector-store goes with --qasper FILE or --beir DIR", EXIT_USAGE)
    if args.qasper or args.compare:  # --compare with --beir too
        from service.cli.evaluate_qasper import run_qasper_or_compare

        return run_qasper_or_compare(args, settings_from(args))
    settings = settings_from(args)
    progress = Progress(args.quiet)
    modes = args.mode or list(MODES)
    embedder = load_embedder(settings)
    if args.beir:
        return _beir(args, settings, embedder, modes, progress)
    backends = [b.strip() for b in (args.backends or "").split(",") if b.strip()]
    if backends:  # the same build on each backend, side by side
        return _backends(args, settings, embedder, backends, modes, progress)
    return _eval_set(args, settings, embedder, modes, progress)


def _structure(args) -> int:
    from eval.structure import format_table, run_structure_benchmark, scores_json

    folder = Path(args.structure)
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder of documents with outline.json files", EXIT_USAGE)
    try:
        scores = run_structure_benchmark(folder, without_bookmarks=args.without_bookmarks)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise CliError(f"cannot read the structure corpus: {exc}", EXIT_INPUT) from None
    if not scores:
        raise CliError(f"no outline.json in {folder} or its sub-folders", EXIT_INPUT)
    if args.json and args.json != "-":
        Path(args.json).write_text(scores_json(scores))
    print(scores_json(scores) if args.json == "-" else format_table(scores))
    return 0


def _questions_path(args) -> Path | None:
    return Path(args.questions) if args.questions else None


def _beir(args, settings, embedder, modes, progress) -> int:
    from eval.beir import default_vector_store, evaluate_beir
    from eval.report import format_beir

    folder = Path(args.beir)
    store = Path(args.vector_store) if args.vector_store else default_vector_store(settings, folder)
    run = evaluate_beir(folder, settings, embedder, modes, args.split or "test", args.beir_fields, progress, store)
    print(format_beir(run))
    if args.json:
        Path(args.json).write_text(json.dumps(run.results, indent=2))
    return 0


def _eval_set(args, settings, embedder, modes, progress) -> int:
    from eval.calibration import calibrate
    from eval.harness import EVAL_DIR, check_baseline, checked_questions, read_baseline, run_report, write_baseline
    from eval.report import format_by_type, format_misses, format_table
    from index import load_current_index, open_retriever

    retriever = open_retriever(settings, embedder, load_current_index(settings))
    from eval.splits import DEFAULT_SPLIT, SplitError, select

    split = args.split or DEFAULT_SPLIT
    if args.write_baseline and args.check_baseline:
        raise CliError("--write-baseline and --check-baseline in one run: a run never rewrites the baseline it "
                       "checks", EXIT_USAGE)
    every = checked_questions(retriever.index, _questions_path(args))
    try:  # anything fitted sees the fit half only; the report is on the split asked for (held-out by default)
        fit_half, questions = select(every, "fit"), select(every, split)
    except SplitError as exc:
        raise CliError(str(exc), EXIT_INPUT) from None
    if args.calibrate:
        cal = calibrate(retriever, fit_half, progress)
        cv, cos = cal.cross_validated, cal.cosine_only
        print(f"wrote {cal.path.relative_to(EVAL_DIR.parent)}; 5-fold CV: rejects "
              f"{cv['unanswerable_rejected']:.2f} of unanswerable, keeps {cv['answerable_kept']:.2f} of answerable; "
              f"top-cosine threshold alone: rejects {cos['unanswerable_rejected']:.2f}, keeps {cos['answerable_kept']:.2f}")
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
        print(f"\nwrote {write_baseline(reports, split).name}")
    if args.check_baseline:
        return _report_drops(check_baseline(reports, read_baseline(split)), f" of the {split} split")
    return 0


def _backends(args, settings, embedder, backends, modes, progress) -> int:
    from eval.backend_views import compare_backends, format_backends_table
    from eval.harness import check_baseline, read_baseline
    from eval.report import format_misses

    if args.calibrate or args.write_baseline:
        raise CliError("--calibrate and --write-baseline take one backend; drop --backends", EXIT_USAGE)
    run = compare_backends(settings, embedder, backends, modes, _questions_path(args), progress)
    questions = run.questions
    print(f"eval set: {len(questions)} questions ({sum(q.answerable for q in questions)} answerable), "
          f"section-level metrics, one build ({run.build}) on each backend")
    for name, where in run.where.items():
        print(f"  {name}: {where}")
    print()
    print(format_backends_table(run.reports, len(questions)))
    for name, reports in run.reports.items():
        hybrid = [r for r in reports if r.mode == RetrievalMode.HYBRID]
        if hybrid and args.misses:
            print(f"\n[{name}] " + format_misses(hybrid[0], args.misses))
    if args.json:
        Path(args.json).write_text(json.dumps({b: [asdict(r) for r in rs] for b, rs in run.reports.items()}, indent=2))
    if args.check_baseline:
        baseline = read_baseline()
        drops = [f"{b} {d}" for b, rs in run.reports.items() for d in check_baseline(rs, baseline)]
        return _report_drops(drops, " on every backend")
    return 0


def _report_drops(drops: list[str], where: str) -> int:
    """Print metrics below the committed baseline; the exit code says whether there were any."""
    for d in drops:
        print(f"below baseline: {d}", file=sys.stderr)
    if not drops:
        print(f"\nall metrics at or above the baseline{where}")
    return 1 if drops else 0
