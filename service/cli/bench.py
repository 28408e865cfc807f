"""``reportqa bench``: the one entry point of every benchmark suite (service, backends, encoders)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from service.cli.common import EXIT_USAGE, CliError, Progress, StderrLog, settings_from

EXAMPLES = ("examples:\n  reportqa bench\n  reportqa bench --quick --json bench.json\n"
            "  reportqa bench --scale 10000,100000\n  reportqa bench --suite backends --sizes report,100000\n"
            "  reportqa bench --suite encoders --no-eval\n"
            "  reportqa bench --suite library --qasper ../shared/benchmarks/qasper/qasper-dev-v0.3.json --papers 400")


def register(add) -> None:
    from eval.bench import SUITES

    p = add("bench", "Benchmark encode, query latency, throughput, ingest and index scaling "
                     "(or the backends, or the encoders).", run, EXAMPLES)
    p.add_argument("--suite", choices=SUITES, default="service", help="which benchmark (default service)")
    p.add_argument("--json", metavar="FILE", help="write results as JSON")
    g = p.add_argument_group("service suite")
    g.add_argument("--quick", action="store_true", help="tiny sizes (what CI runs)")
    g.add_argument("--scale", help="comma-separated synthetic chunk counts (default 10000,100000)")
    g.add_argument("--million", action="store_true", help="add the 1M-chunk scaling case")
    g = p.add_argument_group("backends suite")
    g.add_argument("--sizes", default="report,100000", help="comma-separated: report and/or chunk counts")
    g.add_argument("--queries", type=int, default=100, help="questions per size (at least 100)")
    g.add_argument("--no-faiss-hnsw", action="store_true",
                   help="at synthetic sizes only FAISS as configured, not both flat and HNSW")
    g = p.add_argument_group("encoders suite")
    g.add_argument("--thread-counts", default="2", help="comma-separated thread counts (default 2)")
    g.add_argument("--rounds", type=int, default=2, help="fresh processes per engine, alternating (default 2)")
    g.add_argument("--repeats", type=int, default=3, help="passes over the inputs per process (default 3)")
    g.add_argument("--questions", type=int, default=200, help="questions encoded (default 200)")
    g.add_argument("--passages", type=int, default=200, help="passages encoded (default 200)")
    g.add_argument("--ingest-rounds", type=int, default=2,
                   help="whole `reportqa ingest` runs per engine, alternating (default 2; 0 = none)")
    g.add_argument("--no-eval", action="store_true", help="speed only")
    g.add_argument("--eval-runs", default="torch/torch,torch/onnx,torch/onnx-int8,onnx/onnx",
                   help="INGEST/QUERY engine pairs to score")
    g.add_argument("--work", help="folder for inputs, vectors and indexes (default: a temporary one; "
                                  "also the library suite's, which must be empty)")
    g.add_argument("--passage-papers", type=int, default=8,
                   help="QASPER train papers added to the bundled report for the ingest-speed table (default 8)")
    g.add_argument("--passage-repeats", type=int, default=3, help="passes per ingest-speed configuration (default 3)")
    g.add_argument("--passage-configs", help="ENGINE/MODE/BATCH[/unbucketed],... (default: the standard grid)")
    g.add_argument("--only-passages", action="store_true", help="the ingest-speed table only")
    g = p.add_argument_group("library suite")
    g.add_argument("--qasper", metavar="FILE", help="QASPER JSON (e.g. ../shared/benchmarks/qasper/qasper-dev-v0.3.json)")
    g.add_argument("--papers", type=int, default=400, help="papers in the library (default 400; N+2 are read)")
    g.add_argument("--latency-only", action="store_true",
                   help="only the latency section, on the library an earlier run left in --work (same --papers)")


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"{flag} takes comma-separated numbers, not {text!r}", EXIT_USAGE) from None


def _service(args, settings, log):
    from eval.bench.plan import Plan
    from eval.bench.service_suite import render, run_service_suite
    from service.server import start_in_thread

    try:
        plan = Plan.make(args.quick, args.scale, args.million)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    log(f"{'quick' if plan.quick else 'full'} run; scaling sizes {', '.join(f'{n:,}' for n in plan.sizes)}")
    return run_service_suite(settings, plan, start_in_thread, log), render


def _backends(args, settings, log):
    from eval.bench.backends import render, run_backends_suite

    sizes = [s.strip() if s.strip() == "report" else _ints(s, "--sizes")[0] for s in args.sizes.split(",")
             if s.strip()]
    return run_backends_suite(settings, log, sizes, args.queries, not args.no_faiss_hnsw, Progress()), render


def _encoders(args, settings, log):
    from eval.bench.encoders import BACKENDS, EncoderOptions, render, run_encoders_suite

    runs = tuple(tuple(pair.split("/")) for pair in args.eval_runs.split(",") if pair.strip())
    bad = [r for r in runs if len(r) != 2 or any(b not in BACKENDS for b in r)]
    if bad:
        raise CliError(f"--eval-runs takes INGEST/QUERY pairs of {', '.join(BACKENDS)}, not {'/'.join(bad[0])!r}",
                       EXIT_USAGE)
    from eval.bench.passage_speed import parse_configs

    try:
        configs = parse_configs(args.passage_configs) if args.passage_configs else ()
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.passage_papers < 0 or args.passage_repeats < 1:
        raise CliError("--passage-papers must be >= 0 and --passage-repeats >= 1", EXIT_USAGE)
    options = EncoderOptions(tuple(_ints(args.thread_counts, "--thread-counts")), args.rounds, args.repeats,
                             args.questions, args.passages, args.ingest_rounds, not args.no_eval, runs,
                             Path(args.work) if args.work else None, args.passage_papers, args.passage_repeats,
                             configs, args.only_passages)
    return run_encoders_suite(options, log), render


def _library(args, settings, log):
    from eval.bench.library_suite import render, run_library_suite
    from service.server import start_in_thread

    if not args.qasper:
        raise CliError("--suite library needs --qasper FILE (a QASPER JSON file)", EXIT_USAGE)
    if args.papers < 1:
        raise CliError("--papers must be at least 1", EXIT_USAGE)
    try:
        if args.latency_only and not args.work:
            raise CliError("--latency-only needs --work DIR (the folder of an earlier library run)", EXIT_USAGE)
        return run_library_suite(settings, Path(args.qasper), args.papers, log, Progress(),
                                 Path(args.work) if args.work else None, start_in_thread,
                                 latency_only=args.latency_only), render
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


SUITE_RUNNERS = {"service": _service, "backends": _backends, "encoders": _encoders, "library": _library}


def run(args) -> int:
    """Print the suite's tables (stdout), optionally write JSON. Missed targets are in the table; the exit
    code is 1 when a section failed (no number for it), else 0."""
    from eval.bench.tables import jsonable

    settings = settings_from(args)
    log = StderrLog()
    bench, render = SUITE_RUNNERS[args.suite](args, settings, log)
    print(render(bench), flush=True)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(jsonable(bench.results()), indent=2))
        log(f"results written to {path}")
    failed = [s.name for s in bench.sections if "error" in s.data]
    if failed:
        print(f"reportqa bench: {len(failed)} section(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
