"""Search time with and without the question map on a QASPER library (the encode excluded), interleaved.

    python -m eval.question_map_latency ../shared/benchmarks/qasper/qasper-dev-v0.3.json [--papers N]

With a map, the no-answer judge runs one more dense search on the model's own vector (index/retriever.py);
this prints what that costs per question, filtered to a paper and over the whole library (medians, ms).
Passage vectors come from ``<cache_dir>/eval-vectors`` (embedded there on first use).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from eval.qasper import CachingEmbedder, QasperLibrary
    from eval.qasper_data import load_qasper
    from index import Query, load_embedder, open_retriever
    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.question_map_latency", description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--papers", type=int)
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args(argv)
    base = Settings()
    passages = CachingEmbedder(load_embedder(base, ingest=True), base.cache_dir / "eval-vectors")
    questions_embedder = load_embedder(base)
    papers = load_qasper(args.file, args.papers)
    with tempfile.TemporaryDirectory(prefix="reportqa-map-latency-") as folder:
        loaded, doc_of, _ = QasperLibrary(papers, Path(folder)).build(
            base, passages, lambda stage, n, total: print(f"  {stage}: {n}/{total}", file=sys.stderr) if n == total else None)
        systems = {"without map": open_retriever(base.model_copy(update={"question_map": ""}), questions_embedder, loaded),
                   "with map": open_retriever(base, questions_embedder, loaded)}
        if systems["with map"].question_map is None:
            parser.error("the settings have no question map to measure")
        asked = [(q.question, doc_of[p.id]) for p in papers if p.id in doc_of for q in p.questions][:args.questions]
        print(f"{len(loaded.chunks)} chunks, {len(asked)} questions; median search ms (encode excluded)")
        for scope in ("paper", "library"):
            times: dict[str, list[float]] = {name: [] for name in systems}
            for text, doc in asked:
                own = questions_embedder.encode_query(text)
                for name, retriever in systems.items():
                    query = Query(text, k=10, document=doc if scope == "paper" else None)
                    started = time.perf_counter()
                    retriever.search(query, query_vector=retriever.mapped(own), judge_vector=own)
                    times[name].append(time.perf_counter() - started)
            print(f"  {scope:<8}" + "".join(f"  {name} {statistics.median(t) * 1000:.3f}" for name, t in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
