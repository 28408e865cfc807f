"""BEIR datasets (e.g. SciFact) scored with the product's own retrieval code and metrics.

One passage per BEIR document; BM25 over title and body as two fields by default, as the published
baselines did.
"""
from __future__ import annotations

import gzip
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.errors import EvalError
from eval.metrics import score_run
from eval.progress import Progress
from index import Query, Retriever


@dataclass
class BeirRun:
    name: str
    split: str
    fields: str
    seconds: float
    results: dict[str, dict[str, float]]  # mode -> metric -> value (and "n")


def run_beir(folder: Path, retriever_factory, modes: list[str], split: str = "test",
             progress: Progress | None = None) -> dict:
    """Score a BEIR dataset (one passage per document) with the same retrieval code and metrics."""
    corpus_path = folder / "corpus.jsonl"
    opener = open
    if not corpus_path.exists():
        corpus_path, opener = folder / "corpus.jsonl.gz", gzip.open
    with opener(corpus_path, "rt") as fh:
        corpus = [json.loads(line) for line in fh]
    queries = {}
    with open(folder / "queries.jsonl") as fh:
        for line in fh:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, set[str]] = defaultdict(set)
    with open(folder / "qrels" / f"{split}.tsv") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[qid].add(did)
    retriever = retriever_factory(corpus, progress)
    results = {}
    for mode in modes:
        run = {}
        for n, qid in enumerate(qrels, 1):
            res = retriever.search(Query(queries[qid], k=100, mode=mode))
            run[qid] = [h.chunk.section_id for h in res.hits]
            if progress:
                progress(f"beir {mode}", n, len(qrels))
        scores = score_run(run, dict(qrels))
        scores["recall@100"] = float(np.mean([len(set(run[q][:100]) & rel) / len(rel) for q, rel in qrels.items()]))
        results[mode] = scores | {"n": len(qrels)}
    return results


def beir_retriever(settings, embedder, fields: str = "multifield"):
    """A Retriever over a BEIR corpus built in memory with the product's own index classes.

    ``fields="multifield"`` gives BM25 title and body as separate fields whose scores add up, the
    setup behind the published BM25 baselines (BEIR's Elasticsearch runs, Pyserini's "multifield");
    ``"flat"`` indexes "title body" as one text, as the dense model sees it (Pyserini's "flat")."""
    from index.backends.faiss import DenseIndex, FaissBackend, FieldedLexicalIndex, LexicalIndex
    from index.retriever import FusionWeights
    from index.store import LoadedIndex
    from ingest import Chunk, Document

    def build(corpus, progress):
        texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
        chunks = [Chunk(id=f"{i:08x}", document_id="beir", section_id=d["_id"], section_title=d.get("title", ""),
                        section_path=(), ordinal=0, text=t, embed_text=t, char_start=0, char_end=len(t), tokens=0,
                        model_tokens=0) for i, (d, t) in enumerate(zip(corpus, texts))]
        if fields == "multifield":
            lexical = FieldedLexicalIndex.build([[d.get("title", "") for d in corpus], [d["text"] for d in corpus]],
                                                settings.bm25_k1, settings.bm25_b)
        else:
            lexical = LexicalIndex.build(texts, settings.bm25_k1, settings.bm25_b)
        vectors = embedder.for_passages(settings.ingest_encoder_backend).encode(  # passages as ingest encodes them
            texts, 64, (lambda d, n: progress("embed corpus", d, n)) if progress else None)
        loaded = LoadedIndex(
            build_dir=Path("."), manifest={}, chunks=chunks, sections=[],
            documents={"beir": Document("beir", "", "BEIR", "", "", "text")},
            backend=FaissBackend(DenseIndex.build(vectors, settings.exact_search_max),
                                 lexical),
            sentence_vectors=np.zeros((0, vectors.shape[1]), dtype=np.float16),
            sentence_offsets=np.zeros(len(chunks) + 1, dtype=np.int64), acronyms={},
        )
        weights = FusionWeights(settings.weight_dense, settings.weight_bm25, settings.rrf_k, settings.weight_sentence)
        return Retriever(loaded, embedder, weights, candidates=max(settings.candidates, 100))

    return build


def evaluate_beir(folder: Path, settings, embedder, modes: list[str], split: str = "test",
                  fields: str = "multifield", progress: Progress | None = None) -> BeirRun:
    """``reportqa eval --beir DIR``: EvalError when ``folder`` is not a BEIR dataset."""
    if not (folder / "queries.jsonl").is_file():
        raise EvalError(f"{folder} is not a BEIR dataset folder (queries.jsonl missing)")
    started = time.perf_counter()
    results = run_beir(folder, beir_retriever(settings, embedder, fields), modes, split, progress)
    return BeirRun(folder.name, split, fields, time.perf_counter() - started, results)
