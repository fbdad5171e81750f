"""Top-k hit rates and their rows; the bootstrap CI is seeded and brackets the estimate."""

import numpy as np
import pytest

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.metrics import accuracy
from vitalstudy.metrics.stats import bootstrap_ci


def test_topk_hits_match_a_full_sort():
    rng = np.random.default_rng(0)
    scores, true = rng.normal(size=(40, 12)), rng.integers(0, 12, 40)
    for k in (1, 3, 5):
        expected = [t in np.argsort(-s)[:k] for s, t in zip(scores, true)]
        assert list(accuracy.topk_hits(scores, true, k)) == expected


def test_hit_rate_rows_in_percent_per_method():
    hits = np.array([True, True, False, True, False, False, False, False])
    methods = ["vital"] * 4 + ["maco"] * 4
    rows = accuracy.hit_rate_rows("accuracy_top1", "m", methods, hits, {"iterations": 50, "confidence": 0.95}, 0,
                                  "judge: m")
    assert [(r["method"], r["value"], r["n"]) for r in rows] == [("vital", 75.0, 4), ("maco", 0.0, 4)]
    assert rows[0]["ci_low"] <= 75.0 <= rows[0]["ci_high"]
    assert rows[1]["ci_low"] == rows[1]["ci_high"] == 0.0


def test_bootstrap_is_seeded_and_skips_degenerate_samples():
    x = np.arange(20.0)
    a = bootstrap_ci(np.mean, (x,), 100, 0.9, 7, "k")
    assert a == bootstrap_ci(np.mean, (x,), 100, 0.9, 7, "k")
    assert a != bootstrap_ci(np.mean, (x,), 100, 0.9, 8, "k")
    assert a[0] < 9.5 < a[1]
    assert all(np.isnan(bootstrap_ci(np.mean, (x[:1],), 100, 0.9, 7)))
    assert all(np.isnan(bootstrap_ci(np.mean, (x,), 0, 0.9, 7)))


def test_recentred_bootstrap_removes_the_resampling_bias():
    x = np.random.default_rng(0).normal(size=30)

    def distinct(v):  # biased down by resampling: duplicates reduce the number of distinct values
        return float(len(np.unique(v)))

    raw = bootstrap_ci(distinct, (x,), 200, 0.9, 1, "d")
    fixed = bootstrap_ci(distinct, (x,), 200, 0.9, 1, "d", recenter=True)
    assert raw[1] < 30 <= fixed[1] and fixed[0] < 30
    assert fixed[1] - fixed[0] == pytest.approx(raw[1] - raw[0])


def test_predictions_table_reports_top2_softmax():
    logits = np.zeros((2, 1000))
    logits[0, 967], logits[0, 1] = 5.0, 4.0  # 967 = espresso
    logits[1, 3] = 9.0
    table = accuracy.predictions_table("j", ["vital", "maco"], ["n07920052", "n07920052"], [0, 0], logits,
                                       np.array([967, 967]), imagenet_classes())
    assert list(table["correct"]) == [True, False]
    assert table["top1_label"][0] == "espresso"
    assert table["top1_prob"][0] > table["top2_prob"][0] and table["top2_index"][0] == 1
    assert table["top1_prob"][0] == pytest.approx(np.exp(5) / (np.exp(5) + np.exp(4) + 998))
