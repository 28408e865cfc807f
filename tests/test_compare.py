"""A/B: paired significance figures on hand-computed cases, rank changes, settings overrides refused
with a reason."""
import json

import pytest

from eval.compare import (BadOverrides, RunScores, apply_overrides, compare_runs, load_overrides,
                          paired_bootstrap, sign_test)


def test_sign_test_hand_computed():
    # 4 wins, 0 losses, 1 tie: n = 4, p = 2 * C(4,0) / 2^4 = 0.125
    s = sign_test([0, 0, 0, 0, 0.5], [1, 1, 0.5, 0.2, 0.5])
    assert (s.wins, s.losses, s.ties) == (4, 0, 1) and s.p_value == pytest.approx(0.125)
    # 1 win, 1 loss: p = 2 * (C(2,0) + C(2,1)) / 4 = 1.5, capped at 1
    assert sign_test([1, 0], [0, 1]).p_value == 1.0
    # 9 wins, 1 loss: p = 2 * (1 + 10) / 1024
    assert sign_test([0] * 9 + [1], [1] * 9 + [0]).p_value == pytest.approx(22 / 1024)
    assert sign_test([0.3, 0.3], [0.3, 0.3]) .p_value == 1.0
    with pytest.raises(ValueError):
        sign_test([1], [1, 2])
    # numpy inputs (per-query arrays): 70 wins, 30 losses; 2 ** 100 must not overflow into a p of 1
    import numpy as np
    many = sign_test(np.zeros(100), np.array([1.0] * 70 + [-1.0] * 30))
    assert (many.wins, many.losses) == (70, 30) and many.p_value < 0.001


def test_paired_bootstrap_degenerate_and_shifted_cases():
    same = paired_bootstrap([0.2, 0.5, 1.0], [0.2, 0.5, 1.0])
    assert same.mean_difference == 0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0
    shifted = paired_bootstrap([0.0, 0.25, 0.5], [0.5, 0.75, 1.0], samples=2000)
    assert shifted.mean_difference == pytest.approx(0.5) and shifted.ci_low == shifted.ci_high == pytest.approx(0.5)
    assert shifted.p_value == 0.0
    mixed = paired_bootstrap([0, 1, 0, 1], [1, 0, 1, 0], samples=2000)
    assert mixed.mean_difference == 0 and mixed.p_value > 0.5 and mixed.ci_low < 0 < mixed.ci_high
    assert paired_bootstrap([0, 1], [1, 1], seed=3) == paired_bootstrap([0, 1], [1, 1], seed=3)


def test_compare_lists_rank_changes_and_differences():
    a = RunScores("A", {"mrr@10": 0.75, "n": 2}, {"x": 1, "y": 2}, {"x": 1.0, "y": 0.5}, {"x": "qx", "y": "qy"})
    b = RunScores("B", {"mrr@10": 0.5, "n": 2}, {"x": 1, "y": None}, {"x": 1.0, "y": 0.0})
    c = compare_runs(a, b)
    assert c.difference == {"mrr@10": -0.25}
    assert [(ch.id, ch.rank_a, ch.rank_b, ch.question) for ch in c.changes] == [("y", 2, None, "qy")]
    assert (c.sign.wins, c.sign.losses, c.sign.ties) == (0, 1, 1)
    with pytest.raises(ValueError, match="same questions"):
        compare_runs(a, RunScores("C", {}, {"x": 1}, {"x": 1.0}))


def test_overrides_are_validated(settings, tmp_path):
    assert apply_overrides(settings, {"chunk_tokens": 200}).chunk_tokens == 200
    assert apply_overrides(settings, {}).weight_dense == settings.weight_dense
    with pytest.raises(BadOverrides, match="unknown setting 'chunk_size'"):
        apply_overrides(settings, {"chunk_size": 200})
    with pytest.raises(BadOverrides, match="bad setting chunk_tokens"):
        apply_overrides(settings, {"chunk_tokens": 1})
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(BadOverrides, match="expected a JSON object"):
        load_overrides(tmp_path / "list.json")
    with pytest.raises(BadOverrides, match="no such file"):
        load_overrides(tmp_path / "none.json")
