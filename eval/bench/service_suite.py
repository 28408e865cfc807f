"""The service suite (``reportqa bench``): how fast is ReportQA, and where does the time go?

Sections, run in the order they print:

1. ingest of the bundled report split by stage, index load time, service start-to-ready, memory;
2. the model alone: ``embedder.encode_query`` over short questions;
3. ``POST /query`` over HTTP against a real uvicorn server (started in-process on a free port), with
   distinct questions (the server's LRU cache cannot answer them) and, separately, cached repeats;
4. throughput with 1, 4, 16 and 64 concurrent HTTP clients against ``reportqa serve`` processes;
5. ingest-style batched embedding of synthetic chunk texts;
6. scaling on synthetic clustered unit vectors and Zipf pseudo-text: FAISS exact vs HNSW, recall,
   memory, memory-mapped loading, and BM25;

then the "Targets" table. Missed targets are reported there; the command line decides the exit code.
The suite only reads the index in ``settings.index_dir``; its own ingest goes to a temporary folder.
"""
from __future__ import annotations

import gc
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from eval.bench import e2e, embedding, encode, ingest, scaling, targets, throughput
from eval.bench.plan import Plan
from eval.bench.procstats import cpu_sample, loadavg, others_cpu_share, peak_mb
from eval.bench.runner import BenchRun, Runner
from eval.bench.service_start import StartService
from eval.bench.tables import table
from eval.progress import Log

SECTION_KEYS = ("ingest", "encode", "e2e", "throughput", "embedding", "scaling")


def _meta(settings, plan: Plan) -> dict:
    import faiss
    import torch

    return {
        "quick": plan.quick, "sizes": list(plan.sizes), "million": plan.million,
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(),
        "loadavg_start": loadavg(), "index_dir": str(settings.index_dir),
        "model_path": settings.resolved_model_path,
        "embed_batch_size": settings.embed_batch_size, "exact_search_max": settings.exact_search_max,
        "encoder_backend": settings.encoder_backend,
        "ingest_encoder_backend": settings.ingest_encoder_backend,
        "query_cache_size": settings.query_cache_size,
    }


def _model_load_seconds(ingested: dict, e2e: dict) -> float:
    return float(ingested.get("stages_s", {}).get("model_load", 0.0) or 0.0) + \
        float(ingested.get("service", {}).get("model_load_s", 0.0) or 0.0) + \
        float(e2e.get("st_peer", {}).get("load_s", 0.0) or 0.0)  # section 3's sentence-transformers peer


def _question_encoder(first: ingest.IngestResult, settings):
    if first.service is not None:
        return first.service.embedder
    from index import load_embedder

    return load_embedder(settings)


def _sections(runner: Runner, settings, plan: Plan, tmp: Path, start_service: StartService, log: Log) -> None:
    first = runner.section("ingest", ingest.TITLE, ingest.run, settings, plan, tmp, start_service, log)
    if not isinstance(first, ingest.IngestResult):  # failed: the later sections fall back or say why
        first = ingest.IngestResult(first.name, first.data, first.table)
    try:
        enc = runner.section("encode", encode.TITLE,
                             lambda: encode.run(_question_encoder(first, settings), settings, plan, log))
        runner.section("e2e", e2e.TITLE, e2e.run, first.service, first.serve_settings, start_service, enc.data,
                       plan, log)
        runner.section("throughput", throughput.TITLE, throughput.run, first.serve_settings, settings, plan, log)
    finally:
        if first.service is not None:
            log("stopping the server")
            first.service.stop()
            first.service = None
    runner.section("embedding", embedding.TITLE, embedding.run, settings, plan, first.chunk_texts, log)
    gc.collect()
    runner.section("scaling", "6. scaling", scaling.run, settings, plan, tmp, runner.run.meta["faiss_threads"], log)


def run_service_suite(settings, plan: Plan, start_service: StartService, log: Log) -> BenchRun:
    """Every section in order, then run-wide facts and the targets; each section's failure is recorded."""
    runner = Runner("service", log)
    started, cpu0 = time.perf_counter(), cpu_sample()
    tmp = Path(tempfile.mkdtemp(prefix="reportqa-bench-"))
    runner.run.meta = _meta(settings, plan)
    try:
        _sections(runner, settings, plan, tmp, start_service, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - started
    million_seconds = runner.run.data("scaling").get("million_seconds", 0.0) or 0.0
    runner.run.meta.update({
        "total_seconds": round(total, 1),
        "total_seconds_without_1m": round(total - million_seconds, 1),
        "model_load_seconds": round(_model_load_seconds(runner.run.data("ingest"), runner.run.data("e2e")), 1),
        "loadavg_end": loadavg(),
        "others_cpu_share": others_cpu_share(cpu0, cpu_sample()),
        "peak_rss_mb": round(peak_mb(), 1),
    })
    runner.run.targets = targets.evaluate(runner.run, plan)
    return runner.run


def render(run: BenchRun) -> str:
    """The sections' tables, then the targets and the run-wide facts."""
    return run.render() + "\n\n" + _targets_table(run)


def _targets_table(run: BenchRun) -> str:
    rows = [[t["target"], t["status"], t["value"] if t["value"] is not None else "-", t["reason"]]
            for t in run.targets]
    m = run.meta
    notes = []
    share = m.get("others_cpu_share")
    if share is not None and share > 0.05:
        per = ", ".join(f"{k} {run.data(k)['others_cpu_share']:.0%}" for k in SECTION_KEYS
                        if run.data(k).get("others_cpu_share") is not None)
        notes.append(f"the machine was shared: other processes used {share:.0%} of the CPUs during the run "
                     f"({per}); latency and throughput numbers are pessimistic")
    return (table("Targets", ["target", "status", "value", "reason"], rows, notes) + "\n\n"
            + f"total run time {m['total_seconds']:.1f} s ({m['total_seconds'] / 60:.1f} min"
            + (f"; {m['total_seconds_without_1m']:.1f} s without the 1M case" if m["million"] else "")
            + f"); model loads {m['model_load_seconds']:.1f} s; peak RSS {m['peak_rss_mb']:,.0f} MiB\n"
            f"machine: {m['cpus']} CPUs, torch {m['torch']} with {m['torch_threads']} threads, faiss {m['faiss']} "
            f"with {m['faiss_threads']} threads; encoders: {m.get('encoder_backend', 'torch')} for questions, "
            f"{m.get('ingest_encoder_backend', 'torch')} for ingest\n"
            f"load average at start {m['loadavg_start']}, end {m['loadavg_end']}; "
            f"CPU share used by other processes during the run: "
            + ("n/a" if m.get("others_cpu_share") is None else f"{m['others_cpu_share']:.0%}"))
