"""BEIR datasets (e.g. SciFact) scored with the product's own retrieval code and metrics.

One passage per BEIR document; BM25 over title and body as two fields by default, as the published
baselines did. Each passage is built as ingest builds a chunk: the title is its section context
(``embed_text`` = title + text), its sentences are cut by ingest's own splitter and get the product's
sentence vectors (``settings.sentence_vectors``), so the retriever's third fused list (candidates ranked
by their best sentence's cosine) works here as it does on a report.
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

VECTOR_FOLDER = "beir-vectors"  # under settings.cache_dir: corpus vectors kept between runs, per dataset
DEPTH = 100  # hits kept per query (recall@100)
PEER_ROW = "peer"  # the peer recipe's row in a run's results, beside the product's modes


@dataclass
class BeirRun:
    name: str
    split: str
    fields: str
    seconds: float
    results: dict[str, dict[str, float]]  # mode -> metric -> value (and "n")


@dataclass(frozen=True)
class BeirData:
    corpus: list[dict]  # {"_id", "title", "text"} per document, in file order
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, set[str]]  # query id -> relevant document ids (score > 0), for one split


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """A BEIR folder (``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/SPLIT.tsv``); EvalError if a file is missing."""
    corpus_path = folder / "corpus.jsonl"
    opener = open
    if not corpus_path.exists():
        corpus_path, opener = folder / "corpus.jsonl.gz", gzip.open
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (corpus_path, folder / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise EvalError(f"{folder} is not a BEIR dataset folder with a {split!r} split ({path.name} missing)")
    with opener(corpus_path, "rt") as fh:
        corpus = [json.loads(line) for line in fh if line.strip()]
    queries = {}
    with open(folder / "queries.jsonl") as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                queries[q["_id"]] = q["text"]
    qrels: dict[str, set[str]] = defaultdict(set)
    with open(qrels_path) as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[qid].add(did)
    return BeirData(corpus, queries, dict(qrels))


def run_beir(folder: Path, retriever_factory, modes: list[str], split: str = "test",
             progress: Progress | None = None) -> dict:
    """Score a BEIR dataset (one passage per document) with the same retrieval code and metrics."""
    data = load_beir(folder, split)
    retriever = retriever_factory(data.corpus, progress)
    return {mode: score_beir(rank_queries(retriever, data, mode, progress=progress), data.qrels) for mode in modes}


def rank_queries(retriever, data: BeirData, mode: str, query_ids=None, progress: Progress | None = None,
                 label: str | None = None) -> dict[str, list[str]]:
    """Query id -> the document ids ``retriever`` ranks for it (top DEPTH), for ``query_ids`` (default: every
    query with qrels)."""
    query_ids = list(data.qrels if query_ids is None else query_ids)
    run = {}
    for n, qid in enumerate(query_ids, 1):
        run[qid] = [h.chunk.section_id for h in retriever.search(Query(data.queries[qid], k=DEPTH, mode=mode)).hits]
        if progress:
            progress(f"beir {label or mode}", n, len(query_ids))
    return run


def score_beir(run: dict[str, list[str]], qrels: dict[str, set[str]]) -> dict[str, float]:
    """The harness's metrics plus recall@100, and the number of queries."""
    scores = score_run(run, qrels)
    scores["recall@100"] = float(np.mean([len(set(run.get(q, [])[:DEPTH]) & rel) / len(rel)
                                          for q, rel in qrels.items()])) if qrels else 0.0
    return scores | {"n": len(qrels)}


def beir_chunks(corpus: list[dict]) -> list:
    """One chunk per document, shaped as ingest shapes one: the title is the section context of the embedded
    text, the sentences are ingest's (:func:`ingest.chunking.split_sentences`) with offsets into the text."""
    from ingest import Chunk, Sentence
    from ingest.chunking import embed_text_for, split_sentences

    chunks = []
    for i, d in enumerate(corpus):
        title, text = d.get("title", "").strip(), d["text"].strip()
        sentences = tuple(Sentence(a, b, a, b) for a, b in split_sentences(text))
        embedded = embed_text_for(title, text) if text else title
        chunks.append(Chunk(id=f"{i:08x}", document_id="beir", section_id=d["_id"], section_title=title,
                            section_path=(title,) if title else (), ordinal=0, text=text, embed_text=embedded,
                            char_start=0, char_end=len(text), tokens=0, model_tokens=0, sentences=sentences))
    return chunks


def beir_retriever(settings, embedder, fields: str = "multifield", vector_store: Path | None = None):
    """A Retriever over a BEIR corpus built in memory with the product's own index classes.

    ``fields="multifield"`` gives BM25 title and body as separate fields whose scores add up, the
    setup behind the published BM25 baselines (BEIR's Elasticsearch runs, Pyserini's "multifield");
    ``"flat"`` indexes "title body" as one text, as the dense model sees it (Pyserini's "flat").
    ``vector_store``: a folder keeping the passage and sentence vectors between runs (eval.qasper.CachingEmbedder)."""
    from eval.qasper import CachingEmbedder
    from index.backends.faiss import DenseIndex, FaissBackend, FieldedLexicalIndex, LexicalIndex
    from index.embed.sentences import embed_chunks
    from index import question_map_for
    from index.retriever import FusionWeights
    from index.store import LoadedIndex
    from ingest import Document

    def build(corpus, progress):
        chunks = beir_chunks(corpus)
        if fields == "multifield":
            lexical = FieldedLexicalIndex.build([[c.section_title for c in chunks], [c.text for c in chunks]],
                                                settings.bm25_k1, settings.bm25_b)
        else:
            lexical = LexicalIndex.build([c.embed_text for c in chunks], settings.bm25_k1, settings.bm25_b)
        # passages at the precision ingest encodes them with
        passages = CachingEmbedder(embedder.for_passages(settings.ingest_encoder_backend), vector_store)
        embedded = embed_chunks(passages, chunks, max(settings.embed_batch_size, 64), settings.sentence_vectors,
                                progress)
        offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum([len(c.sentences) for c in chunks], out=offsets[1:])
        loaded = LoadedIndex(
            build_dir=Path("."), manifest={}, chunks=chunks, sections=[],
            documents={"beir": Document("beir", "", "BEIR", "", "", "text")},
            backend=FaissBackend(DenseIndex.build(embedded.passages, settings.exact_search_max), lexical),
            sentence_vectors=embedded.sentences.astype(np.float16),  # stored as a build stores them
            sentence_offsets=offsets, acronyms={},
        )
        return Retriever(loaded, embedder, FusionWeights.from_settings(settings),
                         candidates=max(settings.candidates, DEPTH),
                         question_map=question_map_for(settings, embedder.fingerprint))

    return build


def peer_text(document: dict) -> str:
    """What the common recipe embeds and indexes for one BEIR document: title and body as one text."""
    return f"{document.get('title', '').strip()} {document['text'].strip()}".strip()


def run_peer(data: BeirData, embedder, vector_store: Path | None = None, progress: Progress | None = None) -> dict:
    """The peer recipe (:mod:`eval.peer`: one unit per document, MiniLM fp32 + bm25s defaults, RRF k=60) on
    the same queries, scored with the same metrics, so every BEIR number has its peer from the same run."""
    from eval.peer import build_peer_index, peer_search
    from eval.qasper import CachingEmbedder

    encoder = CachingEmbedder(embedder.full_precision(), vector_store)  # the peer encodes at full precision
    index = build_peer_index([(d["_id"], [peer_text(d)]) for d in data.corpus], encoder, 64, progress)
    run = {}
    for n, qid in enumerate(data.qrels, 1):
        question = data.queries[qid]
        rows = peer_search(index, question, encoder.encode_query(question), k=DEPTH)
        run[qid] = [index.units[row][0] for row in rows]
        if progress:
            progress("beir peer", n, len(data.qrels))
    return score_beir(run, data.qrels)


def default_vector_store(settings, folder: Path) -> Path:
    return Path(settings.cache_dir) / VECTOR_FOLDER / Path(folder).resolve().name


def evaluate_beir(folder: Path, settings, embedder, modes: list[str], split: str = "test",
                  fields: str = "multifield", progress: Progress | None = None,
                  vector_store: Path | None = None, peer: bool = True) -> BeirRun:
    """``reportqa eval --beir DIR``: the product's modes and (``peer``) the peer recipe in the same run;
    EvalError when ``folder`` is not a BEIR dataset."""
    if not (folder / "queries.jsonl").is_file():
        raise EvalError(f"{folder} is not a BEIR dataset folder (queries.jsonl missing)")
    started = time.perf_counter()
    results = run_beir(folder, beir_retriever(settings, embedder, fields, vector_store), modes, split, progress)
    if peer:
        results[PEER_ROW] = run_peer(load_beir(folder, split), embedder, vector_store, progress)
    return BeirRun(folder.name, split, fields, time.perf_counter() - started, results)
