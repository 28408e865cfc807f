"""torch vs ONNX Runtime (fp32 and int8) for the embedding model: speed on questions and passages, and eval-set quality.

    python -m eval.bench_encoders                 # speed (2 threads, 2 rounds) + eval of each query backend
    python -m eval.bench_encoders --no-eval       # speed only (~2 min)
    python -m eval.bench_encoders --threads 1,2   # also a 1-thread row per backend

Each backend is measured in its own fresh process (torch's and ONNX Runtime's
thread pools never share one), in alternating order over ``--rounds`` rounds so
that a change in machine load hits both; medians are over every call of every
round. The load average and the CPU share other processes used during each
measurement are printed, because on a 2-core machine they move the numbers a lot.

Inputs: ~200 short questions (the eval set's and the benchmark's) and ~200
passages of 120-190 word pieces cut from the bundled report (chunked at several
budgets so there are enough distinct ones). Quality: the report is ingested
with ``reportqa ingest --encoder B`` and scored with ``reportqa eval --encoder B``
(subprocesses, the real CLI), including an index built with torch and queried
with ONNX.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from settings import PASSAGE_ENGINES, EncoderEngine, RetrievalMode

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = tuple(EncoderEngine)
INGEST_BACKENDS = PASSAGE_ENGINES  # int8 is for questions: the index's passages stay fp32


# ------------------------------------------------------------------ inputs


def make_inputs(n_questions: int, n_passages: int) -> dict:
    from eval.bench import QUESTIONS as BENCH_QUESTIONS
    from eval.harness import load_questions
    from ingest import Chunker, ingest_paths
    from ingest.tokens import ModelWindow
    from settings import BUNDLED_REPORT, Settings

    questions = list(dict.fromkeys([q.question for q in load_questions()] + list(BENCH_QUESTIONS)))
    while len(questions) < n_questions:
        questions += questions[: n_questions - len(questions)]
    questions = questions[:n_questions]

    settings = Settings()
    window = ModelWindow(settings.resolved_model_path)
    passages: dict[str, int] = {}
    # One chunking gives too few passages this long; several budgets and context styles give enough.
    for context, budget in itertools.product(("section", "none"), range(128, 224, 16)):
        chunker = Chunker.from_settings(settings.model_copy(update={"chunk_tokens": budget, "embed_context": context}))
        for chunk in ingest_paths([BUNDLED_REPORT], chunker).chunks:
            pieces = window(chunk.embed_text)
            if 120 <= pieces <= 190:
                passages.setdefault(chunk.embed_text, pieces)
        if len(passages) >= n_passages:
            break
    texts = list(passages)[:n_passages]
    return {"questions": questions, "passages": texts, "passage_pieces": [passages[t] for t in texts]}


# ------------------------------------------------------------------ one backend, in its own process


def measure(backend: str, threads: int, inputs: dict, repeats: int, out_dir: Path) -> dict:
    from eval.bench import _cpu_sample, _loadavg, _others_cpu_share
    from index.embed import Embedder
    from settings import Settings

    settings = Settings()
    load_before = _loadavg()
    started = time.perf_counter()
    embedder = Embedder(settings.resolved_model_path, threads, backend, settings.cache_dir)
    load_s = time.perf_counter() - started
    questions, passages = inputs["questions"], inputs["passages"]

    for q in questions[:20]:  # warm-up: first calls allocate and pick kernels
        embedder.encode_query(q)
    embedder.encode(passages[:32], batch_size=32)

    cpu0 = _cpu_sample()
    single: list[float] = []
    for _ in range(repeats):
        for q in questions:
            t = time.perf_counter()
            embedder.encode_query(q)
            single.append(time.perf_counter() - t)
    share_single = _others_cpu_share(cpu0, _cpu_sample())

    cpu0 = _cpu_sample()
    batch16: list[float] = []  # what the service's micro-batcher sends under concurrency
    for _ in range(repeats):
        for i in range(0, len(questions) - 15, 16):
            t = time.perf_counter()
            embedder.encode(questions[i:i + 16], batch_size=16)
            batch16.append(time.perf_counter() - t)
    share_batch16 = _others_cpu_share(cpu0, _cpu_sample())

    cpu0 = _cpu_sample()
    passage_runs: list[float] = []
    for _ in range(repeats):
        t = time.perf_counter()
        embedder.encode(passages, batch_size=settings.embed_batch_size)
        passage_runs.append(time.perf_counter() - t)
    share_passages = _others_cpu_share(cpu0, _cpu_sample())

    np.save(out_dir / f"{backend}-questions.npy", embedder.encode(questions))
    np.save(out_dir / f"{backend}-passages.npy", embedder.encode(passages))
    return {
        "backend": backend, "threads": threads, "load_s": load_s, "single_s": single, "batch16_s": batch16,
        "passages_s": passage_runs, "batch_size": settings.embed_batch_size,
        "others_cpu_share": {"single": share_single, "batch16": share_batch16, "passages": share_passages},
        "loadavg_before": load_before, "loadavg_after": _loadavg(),
    }


def run_child(backend: str, threads: int, inputs_file: Path, repeats: int, out_dir: Path) -> dict:
    result_file = out_dir / f"result-{backend}-{threads}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "eval.bench_encoders", "--child", backend, "--threads", str(threads),
           "--repeats", str(repeats), "--inputs", str(inputs_file), "--out", str(result_file)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads(result_file.read_text())


# ------------------------------------------------------------------ eval through the real CLI


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)


def run_ingests(work: Path, rounds: int) -> list[dict]:
    """The whole ingest of the bundled report (chunks + sentences) with each backend, alternating."""
    out = []
    for rnd in range(rounds):
        for backend in INGEST_BACKENDS if rnd % 2 == 0 else INGEST_BACKENDS[::-1]:
            env = {**os.environ, "REPORTQA_INDEX_DIR": str(work / f"ingest-speed-{backend}")}
            print(f"ingest round {rnd + 1}/{rounds}: {backend}", file=sys.stderr, flush=True)
            load1, started = os.getloadavg()[0], time.perf_counter()
            summary = json.loads(cli(["ingest", "--json", "--quiet", "--encoder", backend], env).stdout)
            out.append({"backend": backend, "wall_s": time.perf_counter() - started, "load1_before": load1,
                        **summary["seconds"]})
    return out


def ingest_table(ingests: list[dict]) -> str:
    lines = ["| ingest backend | runs | embed s (median, min-max) | model load s | whole command s "
             "| 1-min load before each |", "|---|---|---|---|---|---|"]
    for backend in INGEST_BACKENDS:
        rs = [r for r in ingests if r["backend"] == backend]
        if rs:
            embed = [r["embed"] for r in rs]
            loads = ", ".join(f"{r['load1_before']:.2f}" for r in rs)
            lines.append(f"| {backend} | {len(rs)} | {np.median(embed):.2f} ({min(embed):.2f}-{max(embed):.2f}) "
                         f"| {np.median([r['model_load'] for r in rs]):.2f} "
                         f"| {np.median([r['wall_s'] for r in rs]):.1f} "
                         f"| {loads} |")
    return "\n".join(lines)


def run_eval(work: Path, runs: list[tuple[str, str]]) -> list[dict]:
    out = []
    built: dict[str, dict] = {}
    for ingest_backend, query_backend in runs:
        index_dir = work / f"index-{ingest_backend}"
        env = {**os.environ, "REPORTQA_INDEX_DIR": str(index_dir)}
        if ingest_backend not in built:
            print(f"ingest with {ingest_backend} into {index_dir}", file=sys.stderr, flush=True)
            summary = json.loads(cli(["ingest", "--json", "--quiet", "--encoder", ingest_backend], env).stdout)
            built[ingest_backend] = summary
        print(f"eval: index built with {ingest_backend}, questions encoded with {query_backend}",
              file=sys.stderr, flush=True)
        report_file = work / f"eval-{ingest_backend}-{query_backend}.json"
        started = time.perf_counter()
        cli(["eval", "--quiet", "--encoder", query_backend, "--json", str(report_file)], env)
        modes = {r["mode"]: r["metrics"] for r in json.loads(report_file.read_text())}
        out.append({"ingest": ingest_backend, "query": query_backend, "modes": modes,
                    "eval_s": time.perf_counter() - started, "ingest_summary": built[ingest_backend]})
    return out


# ------------------------------------------------------------------ report


def _ms(xs: list[float]) -> str:
    a = np.asarray(xs) * 1000
    return f"{np.median(a):.1f}"


def speed_table(results: list[dict], inputs: dict) -> str:
    lines = [
        "| backend | threads | load s (median) | 1 question: median ms | p90 ms | 16 questions: median ms "
        f"| {len(inputs['passages'])} passages: median s (min-max) | passages/s "
        "| others' CPU share (q / 16q / passages) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted({(r["backend"], r["threads"]) for r in results}, key=lambda k: (k[1], BACKENDS.index(k[0]))):
        rs = [r for r in results if (r["backend"], r["threads"]) == key]
        single = [x for r in rs for x in r["single_s"]]
        b16 = [x for r in rs for x in r["batch16_s"]]
        pas = [x for r in rs for x in r["passages_s"]]
        shares = [r["others_cpu_share"] for r in rs]

        def share(k):
            vals = [s[k] for s in shares if s[k] is not None]
            return f"{np.mean(vals):.0%}" if vals else "n/a"

        lines.append(
            f"| {key[0]} | {key[1]} | {np.median([r['load_s'] for r in rs]):.2f} | {_ms(single)} "
            f"| {np.percentile(single, 90) * 1000:.1f} | {_ms(b16)} "
            f"| {np.median(pas):.2f} ({min(pas):.2f}-{max(pas):.2f}) | {len(inputs['passages']) / np.median(pas):.0f} "
            f"| {share('single')} / {share('batch16')} / {share('passages')} |"
        )
    return "\n".join(lines)


def eval_table(evals: list[dict]) -> str:
    lines = ["| index built with | questions encoded with | mode | hit@1 | hit@5 | MRR@10 | nDCG@10 |",
             "|---|---|---|---|---|---|---|"]
    for e in evals:
        for mode in (RetrievalMode.HYBRID, RetrievalMode.DENSE, RetrievalMode.BM25):
            m = e["modes"].get(mode)
            if m:
                lines.append(f"| {e['ingest']} | {e['query']} | {mode} | {m['hit@1']:.3f} | {m['hit@5']:.3f} "
                             f"| {m['mrr@10']:.4f} | {m['ndcg@10']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="2", help="comma-separated thread counts (default 2)")
    p.add_argument("--rounds", type=int, default=2, help="fresh processes per backend, alternating (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="passes over the inputs per process (default 3)")
    p.add_argument("--questions", type=int, default=200)
    p.add_argument("--passages", type=int, default=200)
    p.add_argument("--ingest-rounds", type=int, default=2,
                   help="whole `reportqa ingest` runs per backend, alternating (default 2; 0 = none)")
    p.add_argument("--no-eval", action="store_true", help="speed only")
    p.add_argument("--eval-runs", default="torch/torch,torch/onnx,torch/onnx-int8,onnx/onnx",
                   help="INGEST/QUERY backend pairs to score (default torch/torch,torch/onnx,torch/onnx-int8,onnx/onnx)")
    p.add_argument("--work", help="folder for inputs, vectors and indexes (default: a temporary one)")
    p.add_argument("--json", metavar="FILE", help="write every number as JSON")
    p.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    p.add_argument("--inputs", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from index import configure_runtime

    configure_runtime()
    if args.child:
        inputs = json.loads(Path(args.inputs).read_text())
        result = measure(args.child, int(args.threads), inputs, args.repeats, Path(args.out).parent)
        Path(args.out).write_text(json.dumps(result))
        return 0

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-encoders-"))
    work.mkdir(parents=True, exist_ok=True)
    uptime_start = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"start: {uptime_start}", file=sys.stderr, flush=True)
    inputs = make_inputs(args.questions, args.passages)
    inputs_file = work / "inputs.json"
    inputs_file.write_text(json.dumps(inputs))

    # Make sure the ONNX exports exist, so no measured process pays for them.
    from index.embed import Embedder
    from settings import Settings

    settings = Settings()
    Embedder(settings.resolved_model_path, 1, EncoderEngine.ONNX_INT8, settings.cache_dir)

    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for rnd in range(args.rounds):
            order = BACKENDS if rnd % 2 == 0 else BACKENDS[::-1]
            for backend in order:
                print(f"round {rnd + 1}/{args.rounds}: {backend}, {threads} thread(s)", file=sys.stderr, flush=True)
                results.append(run_child(backend, threads, inputs_file, args.repeats, work))

    agreement = {}  # minimum cosine of each ONNX backend's vectors to torch's
    for backend in BACKENDS[1:]:
        for kind in ("questions", "passages"):
            a, b = (np.load(work / f"{name}-{kind}.npy") for name in ("torch", backend))
            agreement[f"{backend} {kind}"] = float(np.min(np.sum(a * b, axis=1)))

    ingests = run_ingests(work, args.ingest_rounds) if args.ingest_rounds else []
    evals = []
    if not args.no_eval:
        runs = [tuple(pair.split("/")) for pair in args.eval_runs.split(",") if pair.strip()]
        evals = run_eval(work, runs)
    uptime_end = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    pieces = inputs["passage_pieces"]
    print(f"\n## Encoders: torch vs ONNX Runtime ({os.cpu_count()} CPUs)\n")
    print(f"uptime at start: {uptime_start}\nuptime at end:   {uptime_end}\n")
    print(f"{len(inputs['questions'])} questions x {args.repeats} repeats x {args.rounds} rounds; "
          f"{len(inputs['passages'])} passages of {min(pieces)}-{max(pieces)} word pieces "
          f"(mean {np.mean(pieces):.0f}), batch {results[0]['batch_size']}, {args.repeats} repeats x {args.rounds} rounds\n")
    print(speed_table(results, inputs))
    print("\nagreement with torch (minimum cosine): " + ", ".join(f"{k} {v:.6f}" for k, v in agreement.items()))
    if ingests:
        print(f"\nwhole ingest of the bundled report (`reportqa ingest --encoder B`, a fresh process each: "
              f"chunks and their sentences, batch {results[0]['batch_size']}):\n")
        print(ingest_table(ingests))
    if evals:
        print("\n" + eval_table(evals))
        print("\neval wall time (the eval set x 3 modes + baseline, one process each): " + "; ".join(
            f"{e['ingest']}-built/{e['query']}-query {e['eval_s']:.0f} s" for e in evals))
    if args.json:
        Path(args.json).write_text(json.dumps({"uptime_start": uptime_start, "uptime_end": uptime_end,
                                               "speed": results, "agreement": agreement, "ingest": ingests,
                                               "eval": evals}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
