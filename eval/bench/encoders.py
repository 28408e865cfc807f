"""torch vs ONNX Runtime (fp32 and int8) for the embedding model: speed on questions and passages, and eval-set quality.

    reportqa bench --suite encoders                       # speed (2 threads, 2 rounds) + eval of each query backend
    reportqa bench --suite encoders --no-eval             # speed only (~2 min)
    reportqa bench --suite encoders --thread-counts 1,2   # also a 1-thread row per backend

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.bench.procstats import cpu_sample, loadavg, others_cpu_share
from eval.bench.runner import BenchRun, Runner, SectionResult
from eval.progress import Log
from settings import FP32_ENGINES, EncoderEngine, RetrievalMode

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = tuple(EncoderEngine)
INGEST_BACKENDS = FP32_ENGINES  # whole ingests: torch against onnx (int8 passages: the passage-speed section)


# ------------------------------------------------------------------ inputs


def make_inputs(n_questions: int, n_passages: int) -> dict:
    from eval.bench.questions import QUESTIONS as BENCH_QUESTIONS
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
    from index.embed import Embedder
    from settings import Settings

    settings = Settings()
    load_before = loadavg()
    started = time.perf_counter()
    embedder = Embedder(settings.resolved_model_path, threads, backend, settings.cache_dir)
    load_s = time.perf_counter() - started
    questions, passages = inputs["questions"], inputs["passages"]

    for q in questions[:20]:  # warm-up: first calls allocate and pick kernels
        embedder.encode_query(q)
    embedder.encode(passages[:32], batch_size=32)

    cpu0 = cpu_sample()
    single: list[float] = []
    for _ in range(repeats):
        for q in questions:
            t = time.perf_counter()
            embedder.encode_query(q)
            single.append(time.perf_counter() - t)
    share_single = others_cpu_share(cpu0, cpu_sample())

    cpu0 = cpu_sample()
    batch16: list[float] = []  # what the service's micro-batcher sends under concurrency
    for _ in range(repeats):
        for i in range(0, len(questions) - 15, 16):
            t = time.perf_counter()
            embedder.encode(questions[i:i + 16], batch_size=16)
            batch16.append(time.perf_counter() - t)
    share_batch16 = others_cpu_share(cpu0, cpu_sample())

    cpu0 = cpu_sample()
    passage_runs: list[float] = []
    for _ in range(repeats):
        t = time.perf_counter()
        embedder.encode(passages, batch_size=settings.embed_batch_size)
        passage_runs.append(time.perf_counter() - t)
    share_passages = others_cpu_share(cpu0, cpu_sample())

    np.save(out_dir / f"{backend}-questions.npy", embedder.encode(questions))
    np.save(out_dir / f"{backend}-passages.npy", embedder.encode(passages))
    return {
        "backend": backend, "threads": threads, "load_s": load_s, "single_s": single, "batch16_s": batch16,
        "passages_s": passage_runs, "batch_size": settings.embed_batch_size,
        "others_cpu_share": {"single": share_single, "batch16": share_batch16, "passages": share_passages},
        "loadavg_before": load_before, "loadavg_after": loadavg(),
    }


def run_child(backend: str, threads: int, inputs_file: Path, repeats: int, out_dir: Path) -> dict:
    result_file = out_dir / f"result-{backend}-{threads}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "eval.bench.encoders", "--child", backend, "--threads", str(threads),
           "--repeats", str(repeats), "--inputs", str(inputs_file), "--out", str(result_file)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads(result_file.read_text())


# ------------------------------------------------------------------ eval through the real CLI


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)


def run_ingests(work: Path, rounds: int, log: Log) -> list[dict]:
    """The whole ingest of the bundled report (chunks + sentences) with each backend, alternating."""
    out = []
    for rnd in range(rounds):
        for backend in INGEST_BACKENDS if rnd % 2 == 0 else INGEST_BACKENDS[::-1]:
            env = {**os.environ, "REPORTQA_INDEX_DIR": str(work / f"ingest-speed-{backend}")}
            log(f"ingest round {rnd + 1}/{rounds}: {backend}")
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


def run_eval(work: Path, runs: list[tuple[str, str]], log: Log) -> list[dict]:
    out = []
    built: dict[str, dict] = {}
    for ingest_backend, query_backend in runs:
        index_dir = work / f"index-{ingest_backend}"
        env = {**os.environ, "REPORTQA_INDEX_DIR": str(index_dir)}
        if ingest_backend not in built:
            log(f"ingest with {ingest_backend} into {index_dir}")
            summary = json.loads(cli(["ingest", "--json", "--quiet", "--encoder", ingest_backend], env).stdout)
            built[ingest_backend] = summary
        log(f"eval: index built with {ingest_backend}, questions encoded with {query_backend}")
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


@dataclass(frozen=True)
class EncoderOptions:
    thread_counts: tuple[int, ...] = (2,)
    rounds: int = 2  # fresh processes per backend, alternating
    repeats: int = 3  # passes over the inputs per process
    questions: int = 200
    passages: int = 200
    ingest_rounds: int = 2  # whole `reportqa ingest` runs per backend (0 = none)
    evaluate: bool = True
    eval_runs: tuple[tuple[str, str], ...] = ((EncoderEngine.TORCH, EncoderEngine.TORCH),
                                              (EncoderEngine.TORCH, EncoderEngine.ONNX),
                                              (EncoderEngine.TORCH, EncoderEngine.ONNX_INT8),
                                              (EncoderEngine.ONNX, EncoderEngine.ONNX))
    work: Path | None = None
    passage_papers: int = 8  # QASPER train papers added to the bundled report for the passages table
    passage_repeats: int = 3
    passage_configs: tuple = ()  # eval.bench.passage_speed.PassageConfig; () = its DEFAULT_CONFIGS
    only_passages: bool = False  # the passages table alone


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _speed(options: EncoderOptions, inputs: dict, work: Path, log: Log) -> SectionResult:
    inputs_file = work / "inputs.json"
    inputs_file.write_text(json.dumps(inputs))
    results = []
    for threads in options.thread_counts:
        for rnd in range(options.rounds):
            for backend in BACKENDS if rnd % 2 == 0 else BACKENDS[::-1]:
                log(f"round {rnd + 1}/{options.rounds}: {backend}, {threads} thread(s)")
                results.append(run_child(backend, threads, inputs_file, options.repeats, work))
    pieces = inputs["passage_pieces"]
    text = (f"{len(inputs['questions'])} questions x {options.repeats} repeats x {options.rounds} rounds; "
            f"{len(inputs['passages'])} passages of {min(pieces)}-{max(pieces)} word pieces "
            f"(mean {np.mean(pieces):.0f}), batch {results[0]['batch_size']}, {options.repeats} repeats x "
            f"{options.rounds} rounds\n\n" + speed_table(results, inputs))
    return SectionResult("speed", {"speed": results}, text)


def _agreement(work: Path) -> SectionResult:
    """Minimum cosine of each ONNX backend's vectors to torch's."""
    agreement = {}
    for backend in BACKENDS[1:]:
        for kind in ("questions", "passages"):
            a, b = (np.load(work / f"{name}-{kind}.npy") for name in ("torch", backend))
            agreement[f"{backend} {kind}"] = float(np.min(np.sum(a * b, axis=1)))
    return SectionResult("agreement", {"agreement": agreement}, "agreement with torch (minimum cosine): "
                         + ", ".join(f"{k} {v:.6f}" for k, v in agreement.items()))


def _ingest(work: Path, rounds: int, log: Log) -> SectionResult:
    ingests = run_ingests(work, rounds, log)
    return SectionResult("ingest", {"ingest": ingests},
                         "whole ingest of the bundled report (`reportqa ingest --encoder B`, a fresh process each: "
                         "chunks and their sentences):\n\n" + ingest_table(ingests))


def _ceiling(measured: list[dict], papers: int, model_path: str) -> SectionResult:
    """The passages section's sample against this machine's matrix-multiply peak."""
    from eval.bench.ceiling import ceiling_section
    from eval.bench.passage_speed import sample_chunks

    return ceiling_section(sample_chunks(papers), measured, model_path)


def _eval(work: Path, runs, log: Log) -> SectionResult:
    evals = run_eval(work, list(runs), log)
    return SectionResult("eval", {"eval": evals}, eval_table(evals) + "\n\neval wall time (the eval set x 3 modes "
                         "+ baseline, one process each): " + "; ".join(
                             f"{e['ingest']}-built/{e['query']}-query {e['eval_s']:.0f} s" for e in evals))


def run_encoders_suite(options: EncoderOptions, log: Log) -> BenchRun:
    """Speed per engine (fresh processes), agreement with torch, whole ingests, eval-set quality."""
    from index.embed import Embedder
    from settings import Settings

    work = options.work or Path(tempfile.mkdtemp(prefix="bench-encoders-"))
    work.mkdir(parents=True, exist_ok=True)
    runner = Runner("encoders", log)
    runner.run.meta = {"uptime_start": _uptime(), "cpus": os.cpu_count()}
    log(f"start: {runner.run.meta['uptime_start']}")
    settings = Settings()
    # Make sure the ONNX exports exist, so no measured process pays for them.
    Embedder(settings.resolved_model_path, 1, EncoderEngine.ONNX_INT8, settings.cache_dir)
    from eval.bench.passage_speed import DEFAULT_CONFIGS, passages_section

    passages = runner.section("passages", "ingest embedding speed", passages_section,
                              options.passage_configs or DEFAULT_CONFIGS, options.passage_papers,
                              options.passage_repeats, work, log)
    runner.section("ceiling", "the machine's ceiling", _ceiling, passages.data.get("passages", []),
                   options.passage_papers, settings.resolved_model_path)
    if options.only_passages:
        runner.run.meta["uptime_end"] = _uptime()
        return runner.run
    inputs = make_inputs(options.questions, options.passages)
    speed = runner.section("speed", "speed", _speed, options, inputs, work, log)
    if "error" not in speed.data:
        runner.section("agreement", "agreement", _agreement, work)
    if options.ingest_rounds:
        runner.section("ingest", "ingest", _ingest, work, options.ingest_rounds, log)
    if options.evaluate:
        runner.section("eval", "eval", _eval, work, options.eval_runs, log)
    runner.run.meta["uptime_end"] = _uptime()
    return runner.run


def render(run: BenchRun) -> str:
    m = run.meta
    return (f"## Encoders: torch vs ONNX Runtime ({m['cpus']} CPUs)\n\n"
            f"uptime at start: {m['uptime_start']}\nuptime at end:   {m['uptime_end']}\n\n" + run.render())


def main(argv: list[str] | None = None) -> int:
    """The measuring child: ``python -m eval.bench.encoders --child BACKEND ...`` (one engine, one process)."""
    p = argparse.ArgumentParser(description="one encoder engine measured in this process (a child of "
                                            "`reportqa bench --suite encoders`)")
    p.add_argument("--child", choices=BACKENDS, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    from index import configure_runtime

    configure_runtime()  # an entry point: the model libraries' switches before they load
    inputs = json.loads(Path(args.inputs).read_text())
    result = measure(args.child, args.threads, inputs, args.repeats, Path(args.out).parent)
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
