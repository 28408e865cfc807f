"""The eval set's fit/held-out split: fixed in eval/splits.json, reproduced by its rule, stratified by type."""
from collections import Counter

import pytest

from eval.harness import load_questions
from eval.splits import SplitError, assign_splits, select, stored_splits


@pytest.fixture(scope="module")
def questions():
    return load_questions()


def test_stored_split_is_the_rule_applied_once(questions):
    stored = stored_splits()
    assert set(stored) == {q.id for q in questions}  # every question is assigned, none twice
    assert stored == assign_splits([(q.id, q.type) for q in questions])
    # the rule does not depend on the order the questions come in
    assert assign_splits([(q.id, q.type) for q in reversed(questions)]) == stored


def test_halves_are_balanced_per_type(questions):
    stored = stored_splits()
    counts = Counter((q.type, stored[q.id]) for q in questions)
    for t in {q.type for q in questions}:
        assert abs(counts[(t, "heldout")] - counts[(t, "fit")]) <= 1, t
    held, fit = select(questions, "heldout"), select(questions, "fit")
    assert not {q.id for q in held} & {q.id for q in fit} and len(held) + len(fit) == len(questions)
    assert sum(not q.answerable for q in held) >= 10 and sum(not q.answerable for q in fit) >= 10


def test_unknown_split_and_unassigned_questions_are_refused(questions):
    from dataclasses import replace

    with pytest.raises(SplitError, match="unknown split"):
        select(questions, "test")
    with pytest.raises(SplitError, match="not in splits.json"):
        select([replace(questions[0], id="q-new")], "heldout")
    assert len(select(questions, "all")) == len(questions)
