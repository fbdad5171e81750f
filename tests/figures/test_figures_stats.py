"""Statistics of stage 6 on cases with known answers (textbook examples from the scipy docs,
a Holm adjustment worked by hand) and the design rules for paired / unpaired comparisons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vitalstudy.figures import stats


def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_nan():
    adjusted = stats.holm([0.6, math.nan, 0.5])
    assert adjusted[0] == 1.0 and adjusted[2] == 1.0 and math.isnan(adjusted[1])


def test_wilcoxon_on_darwins_plants():
    # scipy.stats.wilcoxon documentation: height differences of 15 pairs, W = 24, p = 0.04126
    d = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75])
    result = stats.wilcoxon_paired(d, np.zeros_like(d))
    assert result["statistic"] == 24
    assert result["p"] == pytest.approx(0.041259765625)
    assert result["effect"] == pytest.approx((96 - 24) / 120)  # rank sums: W+ = 96, W- = 24


def test_mann_whitney_on_the_scipy_example():
    # scipy.stats.mannwhitneyu documentation: U1 = 17, exact two-sided p = 0.1111
    result = stats.mann_whitney(np.array([19, 22, 16, 29, 24]), np.array([20, 11, 17, 12]))
    assert result["statistic"] == 17
    assert result["p"] == pytest.approx(0.1111, abs=1e-4)
    assert result["effect"] == pytest.approx(2 * 17 / 20 - 1)


def test_friedman_kendalls_w_is_one_for_identical_rankings():
    wide = pd.DataFrame({"a": [3.0, 4, 5, 4], "b": [2.0, 3, 4, 3], "c": [1.0, 2, 3, 1]})
    result = stats.friedman(wide)
    assert result["n"] == 4 and result["effect"] == pytest.approx(1.0)
    assert result["p"] < 0.05


def test_compare_methods_chooses_paired_and_unpaired_tests_from_the_design():
    # a, b seen by the same participants (paired); c by others only (unpaired)
    wide = pd.DataFrame({"a": [4.0, 5, 4, 5, 4, np.nan, np.nan, np.nan],
                         "b": [2.0, 3, 2, 1, 3, np.nan, np.nan, np.nan],
                         "c": [np.nan] * 5 + [1.0, 2, 1]}, index=[f"p{i}" for i in range(8)])
    table = stats.compare_methods(wide).set_index("comparison")
    assert table.loc["a vs b", "test"] == "wilcoxon" and table.loc["a vs b", "n"] == 5
    assert table.loc["a vs c", "test"] == "mann-whitney" and table.loc["a vs c", "n"] == 8
    assert (table["p_holm"] >= table["p"]).all()
    assert "all methods" not in table.index  # no participant saw all three: no Friedman


def test_participant_bootstrap_is_reproducible_by_seed():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"participant": np.repeat([f"p{i}" for i in range(20)], 3), "value": rng.normal(3, 1, 60)})
    ci = [stats.participant_bootstrap_ci(frame["value"], frame["participant"], stats.mean, 300, 0.95, seed, "k")
          for seed in (7, 7, 8)]
    assert ci[0] == ci[1] and ci[0] != ci[2]
    assert ci[0][0] < frame["value"].mean() < ci[0][1]


def test_participant_bootstrap_needs_two_participants():
    frame = pd.DataFrame({"participant": ["p0"] * 4, "value": [1.0, 2, 3, 4]})
    low, high = stats.participant_bootstrap_ci(frame["value"], frame["participant"], stats.mean, 100, 0.95, 0)
    assert math.isnan(low) and math.isnan(high)


def test_cluster_bootstrap_is_wider_than_treating_answers_as_independent():
    # each participant answers 10 times with the same value: 20 independent units, not 200
    values = np.repeat(np.random.default_rng(0).normal(0, 1, 20), 10)
    participants = pd.Series(np.repeat(np.arange(20), 10))
    cluster = stats.participant_bootstrap_ci(pd.Series(values), participants, stats.mean, 500, 0.95, 0)
    naive = stats.participant_bootstrap_ci(pd.Series(values), pd.Series(np.arange(200)), stats.mean, 500, 0.95, 0)
    assert cluster[1] - cluster[0] > 2 * (naive[1] - naive[0])
