"""The question map (index/question_map.py): read without pickle, refused for another model, applied to
every question the retriever encodes, and fitted by eval/adapter_fit.py towards the gold passages."""
from __future__ import annotations

import numpy as np
import pytest

from eval.adapter_fit import Examples, fit_map
from index import Query, QuestionMap, QuestionMapError, Retriever, model_fingerprint
from index.question_map import load_question_map


def test_a_map_round_trips_and_is_refused_for_another_model(tmp_path):
    matrix = np.eye(4, dtype=np.float32) * 2
    path = tmp_path / "map.npz"
    QuestionMap(matrix, "abc").save(path)
    assert np.array_equal(load_question_map(path, "abc").matrix, matrix)
    with pytest.raises(QuestionMapError, match="fitted for model abc"):
        load_question_map(path, "other")


def test_unreadable_or_non_square_maps_are_refused_with_a_reason(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a numpy file")
    with pytest.raises(QuestionMapError, match="cannot read"):
        load_question_map(garbage, "abc")
    with pytest.raises(QuestionMapError, match="cannot read"):
        load_question_map(tmp_path / "missing.npz", "abc")
    np.savez(tmp_path / "wide.npz", matrix=np.ones((2, 3), dtype=np.float32), fingerprint=np.array("abc"))
    with pytest.raises(QuestionMapError, match="not a square"):
        load_question_map(tmp_path / "wide.npz", "abc")
    # an object array would need pickle to load: refused, never unpickled
    np.savez(tmp_path / "pickled.npz", matrix=np.array([{"a": 1}], dtype=object), fingerprint=np.array("abc"))
    with pytest.raises(QuestionMapError, match="cannot read"):
        load_question_map(tmp_path / "pickled.npz", "abc")


def test_apply_returns_a_unit_vector_of_the_mapped_question():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(8, 8)).astype(np.float32)
    v = rng.normal(size=8).astype(np.float32)
    out = QuestionMap(matrix, "x").apply(v)
    assert np.isclose(np.linalg.norm(out), 1.0, atol=1e-5)
    assert np.allclose(out, matrix @ v / np.linalg.norm(matrix @ v), atol=1e-5)


def test_the_retriever_searches_with_the_mapped_vector(retriever, settings):
    """An identity map changes nothing; a map that swaps the question for another's vector finds that
    question's passages (the map is applied to every encoded question, dense and sentence lists alike)."""
    fingerprint = model_fingerprint(settings.resolved_model_path)
    retriever = Retriever(retriever.index, retriever.embedder, retriever.weights, retriever.candidates,
                          retriever.answerability)  # the model's own vectors (the fixture has the bundled map)
    question = "How is critical information infrastructure protected?"
    plain = retriever.search(Query(question, k=5))
    d = retriever.index.sentence_vectors.shape[1]
    same = Retriever(retriever.index, retriever.embedder, retriever.weights, retriever.candidates,
                     retriever.answerability, question_map=QuestionMap(np.eye(d, dtype=np.float32), fingerprint))
    assert [h.chunk.id for h in same.search(Query(question, k=5)).hits] == [h.chunk.id for h in plain.hits]

    target = retriever.encode(retriever.expand(Query("Which localities set up offshore data hubs?")))
    source = retriever.encode(retriever.expand(Query(question)))
    rank_one = np.outer(target, source).astype(np.float32)  # W q = target · (source · q): q -> target
    mapped = Retriever(retriever.index, retriever.embedder, retriever.weights, retriever.candidates,
                       retriever.answerability, question_map=QuestionMap(rank_one, fingerprint))
    assert np.allclose(mapped.encode(retriever.expand(Query(question))), target, atol=1e-4)
    dense_mapped = mapped.search(Query(question, k=3, mode="dense")).hits
    dense_target = retriever.search(Query("Which localities set up offshore data hubs?", k=3, mode="dense")).hits
    assert [h.chunk.id for h in dense_mapped] == [h.chunk.id for h in dense_target]
    assert dense_mapped[0].chunk.id != retriever.search(Query(question, k=1, mode="dense")).hits[0].chunk.id


def test_fit_moves_questions_towards_their_gold_passages():
    """On synthetic data where each question's gold passage is a fixed rotation of it, the fitted map ranks
    the gold passages higher than the identity does, and a large penalty keeps it near the identity."""
    rng = np.random.default_rng(1)
    d, n = 16, 200
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    questions = rng.normal(size=(n, d)).astype(np.float32)
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)
    gold = (questions @ rotation.T).astype(np.float32)
    passages = np.concatenate([gold, rng.normal(size=(n, d)).astype(np.float32)])
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    everything = np.arange(len(passages))
    examples = Examples("synthetic", questions, passages.astype(np.float32), [everything] * n,
                        [np.array([i]) for i in range(n)])

    def gold_first(matrix):
        mapped = questions @ matrix.T
        return float(np.mean(np.argmax(mapped @ passages.T, axis=1) == np.arange(n)))

    fitted = fit_map([examples], l2=1e-4, steps=300, lr=1e-2)
    assert gold_first(fitted) > gold_first(np.eye(d)) + 0.5
    held = fit_map([examples], l2=100.0, steps=300, lr=1e-2)
    assert np.abs(held - np.eye(d)).max() < np.abs(fitted - np.eye(d)).max() / 10


@pytest.mark.parametrize("section", [None, "p2"])
def test_the_no_answer_verdict_reads_the_models_own_vector_not_the_maps(retriever, settings, section):
    """The no-answer model was fitted on the model's cosines: a map changes the ranking, never the verdict,
    its confidence or its features (with or without a section filter)."""
    fingerprint = model_fingerprint(settings.resolved_model_path)
    target = retriever.encode(retriever.expand(Query("Which localities set up offshore data hubs?")))
    d = len(target)
    mapped = Retriever(retriever.index, retriever.embedder, retriever.weights, retriever.candidates,
                       retriever.answerability,
                       question_map=QuestionMap(np.outer(target, np.ones(d)).astype(np.float32), fingerprint))
    for question in ("How is critical information infrastructure protected?",
                     "What is the population of Brazil in 1850?"):
        query = Query(question, k=5, section=section)
        plain, moved = retriever.search(query), mapped.search(query)
        assert moved.features == plain.features
        assert (moved.answerable, moved.confidence, moved.reasons) == (plain.answerable, plain.confidence, plain.reasons)
    query = Query("How is critical information infrastructure protected?", k=5, mode="dense")
    assert [h.chunk.id for h in mapped.search(query).hits] != [h.chunk.id for h in retriever.search(query).hits]


def test_bundled_means_the_shipped_map_only_for_the_model_it_was_fitted_for(settings, tmp_path, monkeypatch):
    import index

    fingerprint = model_fingerprint(settings.resolved_model_path)
    shipped = tmp_path / "question_map.npz"
    monkeypatch.setattr(index, "BUNDLED_QUESTION_MAP", shipped)
    bundled = settings.model_copy(update={"question_map": "bundled"})
    assert index.question_map_for(bundled) is None  # nothing shipped
    QuestionMap(np.eye(3, dtype=np.float32) * 2, fingerprint).save(shipped)
    assert np.array_equal(index.question_map_for(bundled).matrix, np.eye(3) * 2)
    QuestionMap(np.eye(3, dtype=np.float32), "another-model").save(shipped)
    assert index.question_map_for(bundled) is None  # another model searches with its own vectors
    assert index.question_map_for(settings.model_copy(update={"question_map": ""})) is None
    with pytest.raises(QuestionMapError, match="fitted for model"):  # a named file is strict
        index.question_map_for(settings.model_copy(update={"question_map": str(shipped)}))


def test_the_cli_refuses_an_unusable_map_with_a_reason(built_index, settings, tmp_path):
    import os
    import subprocess
    import sys

    bad = tmp_path / "bad.npz"
    bad.write_text("no map here")
    env = dict(os.environ, REPORTQA_INDEX_DIR=str(settings.index_dir), REPORTQA_QUESTION_MAP=str(bad))
    out = subprocess.run([sys.executable, "-m", "service.cli", "ask", "How is data protected?"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "cannot read question map" in out.stderr and "Traceback" not in out.stderr


def test_report_examples_hold_each_questions_section_chunks_and_folds_are_fixed(retriever):
    from eval.adapter_fit import beir_half, report_examples, report_fold
    from eval.harness import checked_questions
    from eval.splits import select

    fit_half = select(checked_questions(retriever.index), "fit")
    examples = report_examples(retriever, fit_half)
    answerable = [q for q in fit_half if q.answerable]
    assert len(examples.questions) == len(answerable) and examples.passages.shape[0] == len(retriever.index.chunks)
    for q, gold in zip(answerable, examples.positives):
        assert {retriever.index.chunks[i].section_id for i in gold} <= set(q.sections)
        assert all(retriever.index.chunks[i].section_id not in q.sections
                   for i in set(range(len(retriever.index.chunks))) - set(gold.tolist()))
    folds = [report_fold(q.id) for q in fit_half]
    assert set(folds) == {0, 1} and folds == [report_fold(q.id) for q in fit_half]
    assert {beir_half(str(i)) for i in range(20)} == {"a", "b"}


def test_the_default_settings_search_with_the_shipped_map(retriever, settings):
    """index/question_map.npz is shipped for the bundled model, and the default settings use it."""
    import index

    assert settings.question_map == "bundled" and index.BUNDLED_QUESTION_MAP.is_file()
    assert retriever.question_map is not None
    assert np.abs(retriever.question_map.matrix - np.eye(retriever.question_map.matrix.shape[0])).max() > 1e-3
