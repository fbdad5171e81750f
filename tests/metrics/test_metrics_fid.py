"""FID against pytorch-fid's formula (dense scipy.linalg.sqrtm of the covariance product), KID against
a direct pairwise computation."""

import itertools

import numpy as np
import pytest
from scipy import linalg

from vitalstudy.metrics import fid


def reference_fid(a, b):
    """pytorch-fid 0.3.0 `calculate_frechet_distance`, written out independently."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("n, m, d", [(300, 250, 16), (40, 60, 64), (25, 25, 48)])
def test_fid_matches_sqrtm_reference(n, m, d):
    rng = np.random.default_rng(n + d)
    a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    b = rng.normal(0.3, 1.2, size=(m, d)) @ rng.normal(size=(d, d))
    ours, ref = fid.frechet_distance(a, b), reference_fid(a, b)
    assert ours == pytest.approx(ref, rel=1e-3)
    assert ours > 0


def test_fid_is_zero_for_identical_sets_and_grows_with_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 8))
    assert abs(fid.frechet_distance(a, a)) < 1e-8
    shifts = [fid.frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    assert shifts == pytest.approx([8 * 0.25, 8 * 1.0, 8 * 4.0], rel=1e-6)


def test_kid_matches_pairwise_definition():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 5)), rng.normal(0.5, 1, size=(9, 5))

    def k(x, y):
        return (x @ y / 5 + 1) ** 3

    xx = np.mean([k(a[i], a[j]) for i, j in itertools.permutations(range(7), 2)])
    yy = np.mean([k(b[i], b[j]) for i, j in itertools.permutations(range(9), 2)])
    xy = np.mean([k(x, y) for x in a for y in b])
    assert fid.mmd2_unbiased(a, b) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_is_unbiased_near_zero_for_same_distribution():
    rng = np.random.default_rng(3)
    estimates = [fid.mmd2_unbiased(rng.normal(size=(30, 4)), rng.normal(size=(30, 4))) for _ in range(200)]
    shifted = fid.mmd2_unbiased(rng.normal(size=(30, 4)), rng.normal(1.0, 1, size=(30, 4)))
    assert abs(np.mean(estimates)) < 3 * np.std(estimates) / np.sqrt(len(estimates))
    assert shifted > 10 * np.std(estimates)


def test_kid_subsets_only_when_sets_are_larger_than_a_subset():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(60, 4))
    assert len(fid.kid(a, b, subset_size=100, subsets=10, rng=rng)) == 1
    assert len(fid.kid(a, b, subset_size=20, subsets=10, rng=rng)) == 10


def test_fid_rows_use_the_same_n_for_every_method_and_report_it():
    rng = np.random.default_rng(5)
    by_method = {"vital": rng.normal(size=(12, 6)), "maco": rng.normal(2, 1, size=(9, 6))}
    real = rng.normal(size=(15, 6))
    cfg = {"kid_subset_size": 1000, "kid_subsets": 10}
    rows = fid.fid_rows("_arch", "m", by_method, real, cfg, {"iterations": 30, "confidence": 0.9}, 0, "test")
    assert {r["metric"] for r in rows} == {"fid_arch", "kid_arch"}
    assert {r["n"] for r in rows} == {9}
    assert all("N = 9 FVs per method vs 15 natural images" in r["note"] for r in rows)
    by = {(r["metric"], r["method"]): r for r in rows}
    assert by["fid_arch", "maco"]["value"] > by["fid_arch", "vital"]["value"]
    for r in rows:
        assert r["ci_low"] <= r["value"] <= r["ci_high"], r  # re-centred: resampling inflates FID and KID
        assert "bias-corrected bootstrap CI" in r["note"]
    again = fid.fid_rows("_arch", "m", by_method, real, cfg, {"iterations": 30, "confidence": 0.9}, 0, "test")
    assert again == rows
