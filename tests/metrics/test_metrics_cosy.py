"""AUC equals scikit-learn's ROC-AUC and the Mann-Whitney definition; MAD follows CoSy's formula."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vitalstudy.metrics import cosy


def mann_whitney_auc(pos, neg):
    wins = [(p > q) + 0.5 * (p == q) for p in pos for q in neg]
    return float(np.mean(wins))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_sklearn_and_pairwise_definition(seed):
    rng = np.random.default_rng(seed)
    syn = np.round(rng.normal(0.3, 1, 3), 1)
    ctrl = np.round(rng.normal(0, 1, 50), 1)  # rounding creates ties
    expected = roc_auc_score([1] * 3 + [0] * 50, np.r_[syn, ctrl])
    assert cosy.auc(syn, ctrl) == pytest.approx(expected, abs=1e-12)
    assert cosy.auc(syn, ctrl) == pytest.approx(mann_whitney_auc(syn, ctrl), abs=1e-12)


def test_mad():
    ctrl = np.array([1.0, 2.0, 3.0, 4.0])
    assert cosy.mad(np.array([5.0, 7.0]), ctrl) == pytest.approx((6.0 - 2.5) / np.sqrt(1.25))


def test_rows_and_summary_over_neurons():
    rows = []
    for target, shift in (("head_c1", 1.0), ("head_c2", -1.0)):
        ctrl = np.linspace(0, 1, 10)
        rows += cosy.neuron_rows("m", "vital_lrp", target, ctrl[:3] + shift, ctrl, "act")
    assert [r["metric"] for r in rows] == ["auc", "mad", "auc", "mad"]
    assert rows[0]["value"] > 0.9 and rows[2]["value"] < 0.1
    summary = cosy.summary_rows("m", rows, {"iterations": 10, "confidence": 0.95}, 0)
    auc_mean = next(r for r in summary if r["metric"] == "auc")
    assert auc_mean["value"] == pytest.approx((rows[0]["value"] + rows[2]["value"]) / 2)
    assert auc_mean["n"] == 2 and auc_mean["target"] == "all"
