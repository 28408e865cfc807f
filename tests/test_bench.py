"""The benchmark: its helpers on cases computed by hand, and the quick service suite end to end
against the real model, index and server.

Speed targets are reported by the bench itself ("Targets" table); they are never asserted here,
because timings on shared CI machines flake. What is asserted is what a run must contain: each
section in its place, the exact number of requests each section was told to send, no errors.
"""
import json

import numpy as np
import pytest

from eval.bench.http import RawClient, ResponseHead, run_load
from eval.bench.plan import Plan, parse_sizes
from eval.bench.procstats import latency_stats
from eval.bench.questions import QUESTIONS
from eval.bench.runner import Runner, SectionResult
from eval.bench.scaling import mean_recall
from eval.bench.synthetic import clustered_unit_vectors, zipf_texts, vocabulary
from eval.bench.tables import table
from eval.bench.targets import throughput_targets


def test_mean_recall_by_hand():
    truth = [list(range(10)), list(range(10))]
    found = [[0, 1, 2, 3, 4, 20, 21, 22, 23, 24], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
    assert mean_recall(found, truth, 10) == pytest.approx((0.5 + 1.0) / 2)
    assert mean_recall([[30, 31]], [[0, 1]], 2) == 0.0


def test_latency_stats_in_milliseconds():
    st = latency_stats([0.003, 0.001, 0.002])
    assert st["n"] == 3 and st["median_ms"] == 2.0 and st["mean_ms"] == 2.0
    assert st["min_ms"] == 1.0 and st["max_ms"] == 3.0 and st["p95_ms"] == pytest.approx(2.9)
    assert latency_stats([]) == {"n": 0}


def test_scale_sizes_parse_and_refuse():
    assert parse_sizes("10k, 1m,2_500") == [10_000, 1_000_000, 2_500]
    for bad in ("50", "ten", ""):
        with pytest.raises(ValueError):
            parse_sizes(bad)
    assert Plan.make(quick=True).sizes == (2_000,)
    assert Plan.make(scale="5k", million=True).sizes == (5_000, 1_000_000)


def test_table_aligns_text_left_and_numbers_right():
    assert table("T", ["name", "n"], [["ab", 1_000], ["c", 2]], ["why"]) == (
        "T\n=\nname      n\n----  -----\nab    1,000\nc         2\n  note: why")


def test_response_head_parses_status_and_length():
    head = ResponseHead()
    lines = [b"HTTP/1.1 404 Not Found\r\n", b"content-type: application/json\r\n", b"Content-Length: 17\r\n",
             b"\r\n", b"never read"]
    fed = [head.feed(line) for line in lines[:4]]
    assert fed == [True, True, True, False]
    assert (head.status, head.length) == (404, 17)


def test_synthetic_data_is_deterministic_and_unit_length():
    a, qa, centres = clustered_unit_vectors(300, 7, seed=3)
    b, qb, _ = clustered_unit_vectors(300, 7, seed=3)
    assert a.shape == (300, 384) and qa.shape == (7, 384) and centres == 1_000
    assert np.array_equal(a, b) and np.array_equal(qa, qb)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    texts = zipf_texts(5, vocabulary(50, seed=1), seed=2, words_min=3, words_max=3)
    assert len(texts) == 5 and all(len(t.split()) == 3 and t.endswith(".") for t in texts)


def test_throughput_targets_by_hand():
    levels = [{"server": "1 worker", "clients": 1, "rps": 90.0, "requests": 900, "seconds": 10.0,
               "median_ms": 11.0, "errors": 0, "error_samples": []},
              {"server": "1 worker", "clients": 16, "rps": 210.0, "requests": 2100, "seconds": 10.0,
               "median_ms": 70.0, "errors": 2, "error_samples": ["HTTP/1.1 503"]}]
    rps, errors = throughput_targets(levels, ceiling=300.0, quick=False)
    assert (rps["status"], rps["value"]) == ("met", 210.0)
    assert (errors["status"], errors["value"]) == ("NOT met", 2) and "HTTP/1.1 503" in errors["reason"]
    (quick,) = throughput_targets([], ceiling=None, quick=True)[:1]
    assert quick["status"] == "not measured" and "quick mode" in quick["reason"]


def test_a_failing_section_is_recorded_and_the_run_goes_on():
    runner = Runner("t", log=lambda message: None)

    def boom():
        raise ValueError("boom")

    runner.section("first", "1. First", boom)
    runner.section("second", "2. Second", lambda: SectionResult("second", {"x": 1}, "2. Second\n..."))
    assert [s.name for s in runner.run.sections] == ["first", "second"]
    assert runner.run.data("first")["error"] == "ValueError: boom"
    assert runner.run.section("first").table == "1. First: FAILED (ValueError: boom)"
    assert runner.run.data("second")["x"] == 1 and "section_seconds" in runner.run.data("second")


def test_socket_client_and_load_generator_against_the_server(server):
    raw = RawClient.to(server.url)
    status, body = raw.post_json("/query", {"question": QUESTIONS[0], "k": 2})
    raw.close()
    assert status == 200 and len(json.loads(body)["passages"]) == 2
    port = int(server.url.rsplit(":", 1)[1])
    got = run_load(port, clients=2, seconds=60, max_requests=6, first_question=0)
    assert len(got["latencies"]) == 6 and got["errors"] == []


def test_quick_service_suite(settings, built_index, ingested, tmp_path):
    """The whole quick run in-process: sections in print order, each sending exactly what the plan says."""
    from eval.bench.service_suite import render, run_service_suite
    from service.server import start_in_thread

    plan = Plan.make(quick=True)
    run = run_service_suite(settings, plan, start_in_thread, log=lambda message: None)
    assert [s.name for s in run.sections] == ["ingest", "encode", "e2e", "throughput", "embedding", "scaling"]
    for s in run.sections:
        assert "error" not in s.data, (s.name, s.data.get("error"))
    printed = render(run)
    titles = ["1. Ingest", "1b. Memory", "2. Bare query encode", "3. End-to-end POST /query", "4. Throughput",
              "5. Embedding throughput", "6. Scaling", "6b. Scaling", "6c. Scaling", "Targets"]
    positions = [printed.index(t) for t in titles]
    assert positions == sorted(positions)

    ing = run.data("ingest")  # the bench's own ingest of the bundled report = the test session's
    assert ing["chunks"] == len(ingested.chunks) and ing["sections"] == len(ingested.sections)
    assert ing["sentences"] == sum(len(c.sentences) for c in ingested.chunks)
    assert ing["served_index"] == str(settings.index_dir)
    assert set(ing["index_load_ms"]) == {"verify", "no_verify", "mmap_no_verify"}

    assert run.data("encode")["n"] == len(QUESTIONS) * plan.encode_repeats
    e2e = run.data("e2e")
    assert e2e["errors"] == 0
    assert e2e["distinct"]["n"] == e2e["distinct_httpx"]["n"] == e2e["server_took"]["n"] == plan.e2e_distinct
    assert e2e["inprocess_search"]["n"] == plan.inproc_searches
    assert e2e["cached_repeat"]["n"] == e2e["healthz"]["n"] == plan.e2e_cached
    # the issues' peer: a bare sentence-transformers encode before each of its own requests, then the wait
    # for this process's threads to stop spinning (both peers' encodes: twice per distinct question)
    assert e2e["st_encode_interleaved"]["n"] == e2e["distinct_after_st_encode"]["n"] == plan.e2e_distinct
    assert e2e["quiet_wait_after_st_encode"]["n"] == 2 * plan.e2e_distinct
    assert e2e["st_peer"]["torch_threads"] >= 1 and e2e["st_peer"]["load_s"] > 0
    assert e2e["ratio_p50_to_st_encode"] == pytest.approx(
        e2e["distinct_after_st_encode"]["median_ms"] / e2e["st_encode_interleaved"]["median_ms"], abs=1e-3)
    assert e2e["ratio_p50_to_st_encode"] > 0 and e2e["st_encode_1_thread"]["n"] == plan.e2e_distinct
    assert e2e["distinct_after_st_encode_1_thread"]["n"] == plan.e2e_distinct
    assert e2e["ratio_p50_to_st_encode_1_thread"] == pytest.approx(
        e2e["distinct_after_st_encode_1_thread"]["median_ms"] / e2e["st_encode_1_thread"]["median_ms"], abs=1e-3)
    assert "bare sentence-transformers encode (torch), interleaved" in printed

    levels = run.data("throughput")["levels"]
    assert [(lv["workers"], lv["clients"], lv["requests"], lv["errors"]) for lv in levels] == [
        (1, 1, plan.level_requests, 0), (1, 4, plan.level_requests, 0)]
    assert run.data("embedding")["encoded"] == run.data("embedding")["requested"] == plan.embed_n

    (entry,) = run.data("scaling")["sizes"]
    assert entry["n"] == 2_000 and entry["product_kind"] == "flat"
    assert entry["flat"]["recall_at_10"] >= 0.99  # exact search against itself (BLAS vs single-query ties aside)
    assert entry["flat"]["load_ram"]["same_results"] and entry["hnsw"]["load_ram"]["same_results"]
    assert entry["bm25"]["scores_query"]["n"] == plan.queries

    statuses = {t["target"]: (t["status"], t["value"]) for t in run.targets}
    st_status, st_value = statuses["POST /query p50 / bare sentence-transformers encode median <= 0.6"]
    assert st_value == e2e["ratio_p50_to_st_encode"] and st_status == ("met" if st_value <= 0.6 else "NOT met")
    assert statuses[">= 200 req/s at 16 clients"] == ("not measured", None)
    assert statuses["no errors under concurrency"] == ("met", 0)
    assert [t["reason"] for t in run.targets if t["target"].startswith("1M:")] == ["run with --million"] * 3
    assert list(statuses)[-1] == "quick run < 60 s (excluding model load)"


def test_library_latency_question_sets_by_hand():
    """Round-robin over the papers, (question, paper) pairs distinct, texts distinct, blank ones dropped."""
    from eval.bench.library_latency import question_sets

    papers = [("a", ["Q1", "Q2", "Q3"]), ("b", ["Q1", " "]), ("c", ["Q4"])]
    pairs, texts = question_sets(papers, limit=10)
    assert pairs == [("Q1", "a"), ("Q1", "b"), ("Q4", "c"), ("Q2", "a"), ("Q3", "a")]
    assert texts == ["Q1", "Q4", "Q2", "Q3"]
    assert question_sets(papers, limit=2) == ([("Q1", "a"), ("Q1", "b")], ["Q1", "Q4"])
    assert question_sets([], limit=5) == ([], [])


def test_stall_note_only_when_the_default_pool_is_much_slower():
    from eval.bench.st_peer import stall_note

    assert stall_note(12.0, 14.0) is None and stall_note(None, 14.0) is None
    assert "stalled" in stall_note(400.0, 20.0) and "20x" in stall_note(400.0, 20.0)


def test_wait_until_quiet_waits_out_a_spinning_thread_and_no_longer():
    """Idle: a few looks and back. A thread burning CPU: the wait ends only after it stops, and soon
    after. A thread that never stops: the wait gives up at ``max_s``."""
    import threading
    import time

    from eval.bench.st_peer import QUIET_STEP_S, QUIET_STEPS, wait_until_quiet

    assert QUIET_STEPS * QUIET_STEP_S <= wait_until_quiet() < 0.15

    def spin(seconds: float) -> threading.Thread:
        until = time.perf_counter() + seconds
        thread = threading.Thread(target=lambda: [None for _ in iter(lambda: time.perf_counter() < until, False)])
        thread.start()
        return thread

    thread = spin(0.08)
    waited = wait_until_quiet(max_s=1.0)
    thread.join()
    assert 0.07 <= waited < 0.5

    thread = spin(0.5)
    capped = wait_until_quiet(max_s=0.05)
    thread.join()
    assert 0.05 <= capped < 0.3
