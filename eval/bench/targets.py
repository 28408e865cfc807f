"""The final "Targets" table of the service suite: each target met, NOT met, or not measured, and why."""
from __future__ import annotations

from eval.bench.plan import (
    TARGET_1M_MEMORY_MB, TARGET_1M_MS, TARGET_1M_RECALL, TARGET_E2E_RATIO, TARGET_E2E_TO_ST_RATIO, TARGET_FULL_SECONDS,
    TARGET_QUICK_SECONDS, TARGET_RPS_AT_16, Plan,
)
from eval.bench.tables import fmt

MET, NOT_MET, NOT_MEASURED = "met", "NOT met", "not measured"


def target(name: str, status: str, value, reason: str) -> dict:
    return {"target": name, "status": status, "value": value, "reason": reason}


def e2e_target(e2e: dict) -> dict:
    name = f"POST /query p50 / bare encode median <= {TARGET_E2E_RATIO}"
    ratio = e2e.get("ratio_p50_to_bare_encode")
    if ratio is None:
        return target(name, NOT_MEASURED, None, e2e.get("error", "section 3 did not run"))
    return target(name, MET if ratio <= TARGET_E2E_RATIO else NOT_MET, ratio,
                  f"p50 {e2e['distinct']['median_ms']:.1f} ms vs interleaved encode {e2e['bare_encode_median_ms']:.1f} ms; "
                  f"in-process search {e2e['inprocess_search']['median_ms']:.1f} ms, server took_ms "
                  f"{e2e['server_took']['median_ms']:.1f} ms; GET /healthz {e2e['healthz']['median_ms']:.1f} ms"
                  + (f"; with fp32 questions the ratio is {e2e['what_if_fp32']['ratio']:.2f}" if e2e.get("what_if_fp32")
                     else ""))


def e2e_st_target(e2e: dict) -> dict:
    name = f"POST /query p50 / bare sentence-transformers encode median <= {TARGET_E2E_TO_ST_RATIO}"
    value = e2e.get("ratio_p50_to_st_encode")
    if value is None:
        return target(name, NOT_MEASURED, None, e2e.get("error", "section 3 did not run"))
    peer = e2e["st_peer"]
    return target(name, MET if value <= TARGET_E2E_TO_ST_RATIO else NOT_MET, value,
                  f"p50 {e2e['distinct_after_st_encode']['median_ms']:.1f} ms vs interleaved ST encode "
                  f"{e2e['st_encode_median_ms']:.1f} ms of the same questions; ST on torch with "
                  f"{peer['torch_threads']} threads, the service's questions {peer['question_encoder']}; against the "
                  f"same ST encode on 1 torch thread {fmt(e2e.get('ratio_p50_to_st_encode_1_thread'), 2)}"
                  + ("; CAUTION: torch's default pool stalled (shared machine), the ratio flatters"
                     if e2e.get("st_stalled") else ""))


def throughput_targets(levels: list[dict], ceiling: float | None, quick: bool) -> list[dict]:
    out = []
    name = f">= {TARGET_RPS_AT_16:.0f} req/s at 16 clients"
    at16 = [lv for lv in levels if lv["clients"] == 16]
    if at16:
        lv = max(at16, key=lambda x: x["rps"] or 0)
        met = lv["rps"] >= TARGET_RPS_AT_16
        out.append(target(name, MET if met else NOT_MET, lv["rps"],
                          f"{lv['server']}: {lv['requests']} requests in {lv['seconds']:.1f}s, p50 "
                          f"{fmt(lv.get('median_ms'))} ms"
                          + ("" if met or not ceiling else f"; encoding alone caps this machine near {ceiling:.0f} "
                             "questions/s (section 2), before search and HTTP")))
    else:
        out.append(target(name, NOT_MEASURED, None,
                          "quick mode runs 1 and 4 clients only" if quick else "section 4 did not run"))
    by_level = {(lv["server"], lv["clients"]): lv for lv in levels}
    if by_level:
        errs = sum(lv["errors"] for lv in by_level.values())
        out.append(target("no errors under concurrency", MET if errs == 0 else NOT_MET, errs,
                          f"levels {', '.join(f'{c} ({w})' for w, c in by_level)}" + ("" if errs == 0 else
                          "; " + "; ".join(s for lv in by_level.values() for s in lv["error_samples"][:1]))))
    return out


def million_targets(scaling: dict, queries: int) -> list[dict]:
    sizes = {e["n"]: e for e in scaling.get("sizes", [])}
    big = sizes.get(1_000_000)
    names = (f"1M: HNSW median query <= {TARGET_1M_MS:.0f} ms", f"1M: HNSW recall@10 >= {TARGET_1M_RECALL}",
             f"1M: vector index resident <= {TARGET_1M_MEMORY_MB / 1024:.0f} GiB")
    if big is None or "hnsw" not in big:
        why = "run with --million" if big is None else big.get("error", "1M case failed")
        return [target(name, NOT_MEASURED, None, why) for name in names]
    h = big["hnsw"]
    med = h["query"]["median_ms"]
    loaded = h["load_ram"].get("rss_delta_mb", {}).get("rss_mb", 0.0)
    resident = max(h["rss_delta_mb"]["rss_mb"], loaded, h["file_mb"])
    return [
        target(names[0], MET if med <= TARGET_1M_MS else NOT_MET, med,
               f"p95 {h['query']['p95_ms']} ms, efSearch {h['ef_search']}"),
        target(names[1], MET if h["recall_at_10"] >= TARGET_1M_RECALL else NOT_MET, h["recall_at_10"],
               f"{queries} queries vs exact search"),
        target(names[2], MET if resident <= TARGET_1M_MEMORY_MB else NOT_MET, round(resident, 1),
               f"MiB = max(RSS growth building {h['rss_delta_mb']['rss_mb']:.0f}, loading {loaded:.0f}, file "
               f"{h['file_mb']:.0f}); raw float32 vectors alone {h['raw_vectors_mb']:.0f} MiB; "
               f"DenseIndex.load(mmap=True): {h['mmap']['verdict']}"),
    ]


def runtime_target(meta: dict, plan: Plan) -> dict:
    if plan.quick:
        took = meta["total_seconds_without_1m"] - meta["model_load_seconds"]
        return target(f"quick run < {TARGET_QUICK_SECONDS} s (excluding model load)",
                      MET if took < TARGET_QUICK_SECONDS else NOT_MET, round(took, 1),
                      f"total {meta['total_seconds']} s incl. any 1M case, model loads {meta['model_load_seconds']:.1f} s")
    took = meta["total_seconds_without_1m"]
    return target(f"full run (without 1M) < {TARGET_FULL_SECONDS // 60} min", MET if took < TARGET_FULL_SECONDS
                  else NOT_MET, round(took, 1), f"total {meta['total_seconds']} s incl. any 1M case")


def evaluate(run, plan: Plan) -> list[dict]:
    """Every target of a service-suite run (a BenchRun), in the order the table lists them."""
    return ([e2e_target(run.data("e2e")), e2e_st_target(run.data("e2e"))]
            + throughput_targets(run.data("throughput").get("levels", []),
                                 run.data("encode").get("requests_per_s_ceiling"), plan.quick)
            + million_targets(run.data("scaling"), plan.queries)
            + [runtime_target(run.meta, plan)])
