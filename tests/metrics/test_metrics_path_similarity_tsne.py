"""Path similarity ranks an FV's activations against its own class and the others; t-SNE is seeded."""

import numpy as np
import pandas as pd
import pytest

from vitalstudy.metrics import path_similarity, tsne


def test_rank_correlations_prefer_the_own_class():
    rng = np.random.default_rng(0)
    profile_a, profile_b = rng.normal(size=32), rng.normal(size=32)
    natural = np.stack([profile_a + rng.normal(0, 0.1, 32) for _ in range(3)] +
                       [profile_b + rng.normal(0, 0.1, 32) for _ in range(3)])
    wnids = ["a"] * 3 + ["b"] * 3
    fvs = np.stack([profile_a, profile_b, profile_a])
    same, other = path_similarity.rank_correlations(fvs, ["a", "b", "c"], natural, wnids)
    assert same[0] > 0.9 and same[1] > 0.9 and np.isnan(same[2])
    assert other[0] < 0.5 and other[1] < 0.5
    rows = path_similarity.layer_rows("m", "blocks.2", ["vital", "vital", "maco"], ["a", "b", "c"], [0, 0, 0],
                                      same, other, {"iterations": 10, "confidence": 0.9}, 0)
    summary = {(r["metric"], r["method"]): r for r in rows if r["target"] == "all"}
    assert summary["path_rho_same:blocks.2", "vital"]["value"] == pytest.approx(same[:2].mean())
    assert ("path_rho_same:blocks.2", "maco") not in summary  # no natural image of class c


def test_tsne_is_seeded_and_caps_perplexity():
    rng = np.random.default_rng(1)
    features = np.r_[rng.normal(0, 1, (6, 10)), rng.normal(8, 1, (6, 10))]
    points = pd.DataFrame({"kind": ["natural"] * 12})
    a = tsne.coordinates_table(points, features, perplexity=30, seed=3)
    b = tsne.coordinates_table(points, features, perplexity=30, seed=3)
    pd.testing.assert_frame_equal(a, b)
    xy = a[["x", "y"]].to_numpy()
    within = np.linalg.norm(xy[:6] - xy[:6].mean(0), axis=1).mean()
    between = np.linalg.norm(xy[:6].mean(0) - xy[6:].mean(0))
    assert between > within
