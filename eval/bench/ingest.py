"""Section 1: ingest of the bundled report split by stage, index load time, service start-to-ready, memory."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.bench.plan import Plan
from eval.bench.procstats import memory, memory_delta, peak_mb
from eval.bench.runner import SectionResult
from eval.bench.service_start import LiveService, StartService
from eval.bench.tables import mib, table
from eval.progress import Log

TITLE = "1. Ingest of the bundled report, index load, service start"


@dataclass
class IngestResult(SectionResult):
    chunk_texts: list[str] = field(default_factory=list)  # the embedded texts, for section 5's synthetic chunks
    serve_settings: object = None  # whose index the service serves
    service: LiveService | None = None  # started here, used by sections 2-3, stopped by the suite


def _ingest(build_settings, log: Log) -> tuple[dict, list[str]]:
    from index import build_index, load_embedder
    from ingest import Chunker, ingest_paths
    from settings import BUNDLED_REPORT

    mem0 = memory()
    log("ingest: read + parse + chunk the bundled report")
    t = time.perf_counter()
    chunker = Chunker.from_settings(build_settings)
    t_chunker = time.perf_counter() - t
    t = time.perf_counter()
    result = ingest_paths([BUNDLED_REPORT], chunker)
    t_parse = time.perf_counter() - t
    if result.failures:
        raise RuntimeError(f"bundled report failed to ingest: {result.failures[0].reason}")
    log("ingest: load the model")
    t = time.perf_counter()
    embedder = load_embedder(build_settings, ingest=True)
    t_model = time.perf_counter() - t
    n_sentences = sum(len(c.sentences) for c in result.chunks)
    log(f"ingest: embed {len(result.chunks)} chunks + {n_sentences} sentences and write the index")
    last: dict[str, int] = {}

    def progress(stage, done, total):
        pct = int(100 * done / max(total, 1))
        if pct // 25 != last.get(stage, -1) // 25 or done >= total:
            last[stage] = pct
            log(f"  {stage}: {done}/{total}")

    t = time.perf_counter()
    build_dir, timings = build_index(build_settings, result, embedder, progress)
    t_build = time.perf_counter() - t
    res = {"chunks": len(result.chunks), "sentences": n_sentences, "sections": len(result.sections),
           "index_bytes": sum(p.stat().st_size for p in build_dir.rglob("*") if p.is_file())}
    res["stages_s"] = {
        "tokenizers_load": round(t_chunker, 3),
        "read_parse_chunk": round(t_parse, 3),
        "model_load": round(t_model, 3),
        "embed": round(timings["embed"], 3),
        "index_build_save": round(timings["index"], 3),
        "metadata_checksums_fsync": round(t_build - timings["embed"] - timings["index"], 3),
        "index_write_total": round(t_build - timings["embed"], 3),
    }
    res["stages_s"]["total"] = round(t_chunker + t_parse + t_model + t_build, 3)
    res["embed_items_per_s"] = round((len(result.chunks) + n_sentences) / max(timings["embed"], 1e-9), 1)
    res["ingest_peak_rss_mb"] = round(peak_mb(), 1)
    res["ingest_rss_delta_mb"] = memory_delta(memory(), mem0)
    return res, [c.embed_text for c in result.chunks]


def _served_settings(settings, build_settings, res: dict, log: Log):
    """The configured index if it loads, else the build just made."""
    from index import IndexUnavailable, load_current_index

    try:
        load_current_index(settings, verify=False)
        res["served_index"] = str(settings.index_dir)
        return settings
    except IndexUnavailable as exc:
        log(f"no usable index in {settings.index_dir} ({exc}); serving the bench's own build")
        res["served_index"] = f"{build_settings.index_dir} (bench build; configured index unusable: {exc})"
        return build_settings


def _index_loads(settings, repeats: int, log: Log) -> dict[str, float]:
    from index import load_current_index

    log("index load (load_current_index)")
    loads = {}
    for label, kwargs in (("verify", {"verify": True}), ("no_verify", {"verify": False}),
                          ("mmap_no_verify", {"verify": False, "mmap": True})):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            loaded = load_current_index(settings, **kwargs)
            times.append(time.perf_counter() - t)
            del loaded
        loads[label] = round(float(np.median(times)) * 1000, 2)
    return loads


def _start(settings, start_service: StartService, log: Log) -> tuple[LiveService, dict]:
    log("service start: load_state + create_app + uvicorn until /readyz is 200")
    gc.collect()
    mem_before = memory()
    service = start_service(settings)
    mem_after = memory()
    info = {k: round(v, 3) for k, v in service.timings.items()}
    info.update({"rss_delta_mb": memory_delta(mem_after, mem_before), "rss_after_mb": round(mem_after["rss_mb"], 1),
                 "url": service.url})
    return service, info


def _tables(res: dict) -> str:
    s, loads, svc = res["stages_s"], res["index_load_ms"], res["service"]
    rows = [
        ["tokenizers load (tiktoken + word pieces)", s["tokenizers_load"] * 1000, ""],
        ["read + parse + chunk", s["read_parse_chunk"] * 1000, f"{res['chunks']} chunks, {res['sections']} sections"],
        ["model load", s["model_load"] * 1000, "first load in this process (includes torch / ST imports)"],
        ["embed (chunks + sentences)", s["embed"] * 1000, f"{res['chunks']} + {res['sentences']} texts, "
                                                         f"{res['embed_items_per_s']:.1f} texts/s"],
        ["index build + save (FAISS, BM25)", s["index_build_save"] * 1000, ""],
        ["metadata, checksums, fsync, switch", s["metadata_checksums_fsync"] * 1000, ""],
        ["= index write", s["index_write_total"] * 1000, f"{res['index_bytes'] / 2**20:.2f} MiB on disk"],
        ["= ingest total", s["total"] * 1000, ""],
        ["index load, verified (load_current_index)", loads["verify"], "checksums every file"],
        ["index load, verify=False", loads["no_verify"], ""],
        ["index load, verify=False, mmap=True", loads["mmap_no_verify"], ""],
        ["service start-to-ready", svc["start_to_ready_s"] * 1000,
         "load_state + create_app + uvicorn + warm-up, until /readyz 200"],
        ["  of which load_state", svc["load_state_s"] * 1000,
         f"model load {svc['model_load_s'] * 1000:,.0f} ms (second load: imports and files warm)"],
        ["  of which uvicorn start + warm-up", svc["server_start_to_ready_s"] * 1000, ""],
    ]
    mem_rows = [
        ["peak RSS after ingest (ru_maxrss)", mib(res["ingest_peak_rss_mb"]), ""],
        ["RSS delta of the server (load_state..ready)", mib(svc["rss_delta_mb"]["rss_mb"]),
         f"anon {svc['rss_delta_mb']['anon_mb']:+.0f}, file {svc['rss_delta_mb']['file_mb']:+.0f}"],
        ["RSS with the server ready", mib(svc["rss_after_mb"]), ""],
        ["peak RSS so far (ru_maxrss)", mib(res["peak_rss_mb_after_start"]), ""],
    ]
    return (table(TITLE, ["stage", "ms", "detail"], rows,
                  [f"served index: {res['served_index']}",
                   "a fresh `reportqa serve` process also pays the first model load (row 'model load') "
                   "before it is ready"])
            + "\n\n" + table("1b. Memory", ["what", "MiB", "detail"], mem_rows))


def run(settings, plan: Plan, tmp: Path, start_service: StartService, log: Log) -> IngestResult:
    """Ingest into ``tmp`` (the configured index is only read), time loading it, start the service."""
    build_settings = settings.model_copy(update={"index_dir": tmp / "index"})
    res, chunk_texts = _ingest(build_settings, log)
    gc.collect()
    serve_settings = _served_settings(settings, build_settings, res, log)
    res["index_load_ms"] = _index_loads(serve_settings, 1 if plan.quick else 3, log)
    service, res["service"] = _start(serve_settings, start_service, log)
    res["peak_rss_mb_after_start"] = round(peak_mb(), 1)
    return IngestResult("ingest", res, _tables(res), chunk_texts, serve_settings, service)
