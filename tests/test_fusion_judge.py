"""The no-answer signal reads its features under the fusion its model was fitted with, whatever the ranking's."""
from __future__ import annotations

import json

from eval.harness import load_questions
from index import FusionWeights, Query, Retriever, load_answerability
from index.answerability import AnswerabilityModel


def test_the_shipped_model_names_the_fusion_it_was_fitted_with():
    model = load_answerability()
    assert isinstance(model.fusion, FusionWeights) and model.fusion.rrf_k >= 1
    assert model.fusion.top_score() == (model.fusion.dense + model.fusion.bm25 + model.fusion.sentence) / (
        model.fusion.rrf_k + 1)


def test_reweighting_the_ranking_does_not_move_the_no_answer_features(retriever):
    model = retriever.answerability
    other = FusionWeights(0.5, 1.0, 5, 3.0)
    assert model.fusion and model.fusion != other
    reweighted = Retriever(retriever.index, retriever.embedder, other, retriever.candidates, model)
    unpinned = Retriever(retriever.index, retriever.embedder, other, retriever.candidates,
                         AnswerabilityModel(model.weights, model.bias, model.threshold))
    moved_rank = moved_features = 0
    questions = [q.question for q in load_questions()][:40]
    for question in questions:
        a, b, c = (r.search(Query(question, k=10)) for r in (retriever, reweighted, unpinned))
        assert a.features == b.features and a.answerable == b.answerable and a.confidence == b.confidence
        moved_rank += [h.chunk.id for h in a.hits] != [h.chunk.id for h in b.hits]
        moved_features += json.dumps(a.features, sort_keys=True) != json.dumps(c.features, sort_keys=True)
    assert moved_rank > 0  # the ranking did follow the new weights
    assert moved_features > 0  # and without the pinned fusion the features would have moved
