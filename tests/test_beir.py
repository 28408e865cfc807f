"""The BEIR runner with the product's sentence vectors, its vector store, and the fusion fit over cached lists,
on a small BEIR-shaped folder written here (real model, real FAISS and BM25)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval.beir import beir_chunks, beir_retriever, load_beir, run_beir
from eval.beir_fit import Config, collect, evaluate_grid, ndcg_per_query, reference_ndcg, two_fold
from eval.errors import EvalError
from index import Query
from settings import RetrievalMode

CORPUS = [
    {"_id": "d1", "title": "Bone health in the elderly",
     "text": "We followed 900 adults over ten years. Vitamin D deficiency was linked to weaker bones. "
             "Calcium intake did not change the result."},
    {"_id": "d2", "title": "Sleep and the heart",
     "text": "A cohort of nurses reported their sleep. Short sleep raised the risk of heart disease. "
             "Naps made no difference."},
    {"_id": "d3", "title": "Coffee",
     "text": "Moderate coffee drinking is not associated with cancer. Tea was not studied."},
    {"_id": "d4", "title": "Exercise trial",
     "text": "Participants walked daily for a year. Regular exercise lowered blood pressure. "
             "Weight changed little, e.g. by 1 kg."},
    {"_id": "d5", "title": "Diet and diabetes",
     "text": "Sugary drinks raised the risk of type 2 diabetes. Fruit juice was less clear."},
]
QUERIES = [("q1", "Low vitamin D weakens bones"), ("q2", "Lack of sleep harms the heart"),
           ("q3", "Physical activity reduces hypertension"), ("q4", "Soft drinks cause diabetes"),
           ("q5", "Coffee causes cancer")]


@pytest.fixture()
def dataset(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in CORPUS))
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps({"_id": q, "text": t}) for q, t in QUERIES))
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n"
                                                  "q4\td5\t1\nq4\td3\t0\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq5\td3\t1\n")
    return tmp_path


def test_chunks_carry_ingest_sentences_and_the_title_as_context():
    chunks = beir_chunks(CORPUS)
    assert [len(c.sentences) for c in chunks] == [3, 3, 2, 3, 2]  # "e.g." does not end a sentence
    first = chunks[0]
    assert first.embed_text.startswith("Bone health in the elderly") and first.embed_text.endswith(first.text)
    assert [first.text[s.text_start:s.text_end] for s in first.sentences][1] == \
        "Vitamin D deficiency was linked to weaker bones."


def test_loader_reads_one_split_and_refuses_a_missing_one(dataset):
    data = load_beir(dataset, "train")
    assert data.qrels == {"q1": {"d1"}, "q2": {"d2"}, "q3": {"d4"}, "q4": {"d5"}}  # score 0 is not relevant
    with pytest.raises(EvalError, match="'dev' split"):
        load_beir(dataset, "dev")


def test_retriever_has_sentence_vectors_and_the_store_reuses_them(dataset, settings, embedder, tmp_path):
    store = tmp_path / "store"
    corpus = load_beir(dataset, "test").corpus
    retriever = beir_retriever(settings, embedder, vector_store=store)(corpus, None)
    offsets = retriever.index.sentence_offsets
    assert len(retriever.index.sentence_vectors) == offsets[-1] == 13
    norms = np.linalg.norm(retriever.index.sentence_vectors.astype(np.float32), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-2)
    hit = retriever.search(Query("Short sleep and heart disease", k=1)).hits[0]
    assert hit.chunk.section_id == "d2" and "heart disease" in hit.highlights[0].text
    assert list(store.glob("*.npy"))

    class Refuses:  # a second build must take every vector from the store
        def __getattr__(self, name):
            return getattr(embedder.full_precision(), name)

        def full_precision(self):
            return self

        def encode(self, texts, batch_size=32, progress=None):
            raise AssertionError(f"encoded {len(texts)} texts the store has")

    again = beir_retriever(settings, Refuses(), vector_store=store)(corpus, None)
    assert np.array_equal(again.index.sentence_vectors, retriever.index.sentence_vectors)


def test_the_sentence_list_is_fused_on_beir(dataset, settings, embedder):
    """A passage first in the dense, BM25 and best-sentence lists scores the sum of all three weights; without
    sentence vectors (the runner before) the third list was empty and the top score stopped at two."""
    corpus = load_beir(dataset, "train").corpus
    question = Query("Short sleep raised the risk of heart disease", k=1)
    for weight in (settings.weight_sentence, 0.0):
        tuned = settings.model_copy(update={"weight_sentence": weight})
        hit = beir_retriever(tuned, embedder)(corpus, None).search(question).hits[0]
        assert hit.chunk.section_id == "d2"
        assert hit.score == pytest.approx((tuned.weight_dense + tuned.weight_bm25 + weight) / (tuned.rrf_k + 1))
    results = run_beir(dataset, beir_retriever(settings, embedder), [RetrievalMode.HYBRID], "train")
    assert results["hybrid"]["n"] == 4 and 0.5 < results["hybrid"]["ndcg@10"] <= 1.0


def test_vectorised_fusion_matches_the_retrievers_own(dataset, settings, embedder):
    data = load_beir(dataset, "train")
    retriever = beir_retriever(settings, embedder)(data.corpus, None)
    lists = collect(retriever, data, depths=(2, 5))
    configs = [Config(1.3, 1.0, 1.0, 60, 5), Config(1.0, 1.0, 0.0, 10, 5), Config(0.5, 1.0, 3.0, 5, 2),
               Config(2.0, 1.0, 0.5, 1, 2), Config(1.0, 1.0, 0.0, 5, 5, "convex"),
               Config(2.0, 1.0, 1.0, 5, 2, "convex")]
    for config in configs:
        assert ndcg_per_query(lists[config.depth], config).mean() == pytest.approx(
            reference_ndcg(retriever, data, config), abs=1e-12)
    per_query = evaluate_grid(lists, configs)
    estimate, chosen = two_fold(per_query, configs[0])
    assert 0.0 <= estimate <= 1.0 and all(c in configs for c in chosen)
    # a query whose relevant document is not among the candidates scores 0
    assert ndcg_per_query(lists[2], Config(1.0, 1.0, 0.0, 60, 2)).min() >= 0.0


def _cli(*args, cwd=None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, timeout=180,
                          env=dict(os.environ), cwd=cwd)


def test_cli_beir_uses_the_store_and_refuses_bad_input(dataset, tmp_path):
    store = tmp_path / "vectors"
    out = _cli("eval", "--beir", str(dataset), "--split", "train", "--mode", "hybrid", "--quiet",
               "--vector-store", str(store))
    assert out.returncode == 0, out.stderr
    assert "hybrid" in out.stdout and list(store.glob("*.npy"))
    missing = _cli("eval", "--beir", str(tmp_path / "nothing"), "--quiet")
    assert missing.returncode == 2 and "not a BEIR dataset" in missing.stderr and "Traceback" not in missing.stderr
    alone = _cli("eval", "--vector-store", str(store), "--quiet")
    assert alone.returncode == 2 and "--vector-store goes with" in alone.stderr


def test_the_fit_script_refuses_to_fit_on_test(dataset, capsys):
    from eval.beir_fit import main

    with pytest.raises(SystemExit) as exc:
        main([str(dataset), "--split", "test"])
    assert exc.value.code == 2 and "fit on train" in capsys.readouterr().err


def test_the_peer_runs_beside_the_product_on_the_same_queries(dataset, settings, embedder, tmp_path):
    """The peer row (one unit per document, MiniLM fp32 + bm25s, RRF k=60) is scored on the same queries; a query
    whose words are in one document only finds it first, and the peer's text is title + body."""
    from eval.beir import PEER_ROW, evaluate_beir, peer_text, run_peer

    assert peer_text(CORPUS[2]) == "Coffee Moderate coffee drinking is not associated with cancer. Tea was not studied."
    run = evaluate_beir(dataset, settings, embedder, [RetrievalMode.HYBRID], "train", vector_store=tmp_path / "v")
    assert set(run.results) == {"hybrid", PEER_ROW}
    assert run.results[PEER_ROW]["n"] == run.results["hybrid"]["n"] == 4
    assert 0.5 < run.results[PEER_ROW]["ndcg@10"] <= 1.0
    data = load_beir(dataset, "train")
    lone = data.__class__(data.corpus, {"q": "Sugary drinks raised the risk of type 2 diabetes"}, {"q": {"d5"}})
    assert run_peer(lone, embedder)["mrr@10"] == 1.0
    assert PEER_ROW not in evaluate_beir(dataset, settings, embedder, [RetrievalMode.DENSE], "train",
                                         vector_store=tmp_path / "v", peer=False).results


def test_compare_on_beir_pairs_two_configurations_on_each_query(dataset, settings, embedder, tmp_path):
    """`--compare` with `--beir`: both configurations and the peer on the same queries, paired on nDCG@10. B's
    question map sends every query to document d5's direction, so its queries about other documents lose."""
    from eval.compare import run_beir_compare
    from index import QuestionMap, model_fingerprint

    store = tmp_path / "v"
    retriever = beir_retriever(settings, embedder, vector_store=store)(load_beir(dataset, "train").corpus, None)
    target = retriever.encode(CORPUS[4]["text"])
    d = len(target)
    path = tmp_path / "to-d5.npz"
    QuestionMap(np.outer(target, np.ones(d, dtype=np.float32)).astype(np.float32),
                model_fingerprint(settings.resolved_model_path)).save(path)
    configs = {"A": settings, "B": settings.model_copy(update={"question_map": str(path)})}
    c = run_beir_compare(dataset, configs, embedder, "train", store)
    assert c.a.paired == "nDCG@10" and set(c.a.reciprocal) == set(c.b.reciprocal) == {"q1", "q2", "q3", "q4"}
    assert c.a.metrics["ndcg@10"] > c.b.metrics["ndcg@10"]
    assert c.sign.losses >= 1 and c.peer is not None and c.peer.metrics["n"] == 4
    out = _cli("eval", "--beir", str(dataset), "--split", "train", "--quiet", "--vector-store", str(store),
               "--compare", *_override_files(tmp_path, {}, {"question_map": str(path)}))
    assert out.returncode == 0, out.stderr
    assert "per-question nDCG@10 (4 questions)" in out.stdout


def _override_files(folder, a: dict, b: dict) -> list[str]:
    paths = []
    for name, overrides in (("a", a), ("b", b)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(overrides))
        paths.append(str(path))
    return paths
