"""Fréchet Inception-style distance (FID) and kernel inception distance (KID) between FV features
and natural-image features of the same classes (PAPER_NOTES §3).

FID is the Fréchet distance of two Gaussians fitted to the feature sets, as in pytorch-fid (which
the paper cites): |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b). The trace of the matrix
square root is computed exactly from eigen/singular values in the smaller of the two spaces: with far
fewer images than feature dimensions (the usual case here) the covariances are rank-deficient and a
dense `sqrtm` of a d x d matrix is both slow and numerically fragile; the tests check this against
pytorch-fid's `scipy.linalg.sqrtm` formula. Because FID is biased by the number of images, every
method gets the same N (a seeded subsample) and N is reported; KID (unbiased polynomial-kernel MMD^2)
is given beside it because it is meaningful at small N.
"""

from __future__ import annotations

import math

import numpy as np

from vitalstudy.metrics.longformat import row
from vitalstudy.metrics.stats import bootstrap_ci
from vitalstudy.seeding import rng as seeded_rng


def _scaled_centered(x: np.ndarray) -> np.ndarray:
    """X - mean, divided by sqrt(n - 1): then X^T X is the sample covariance."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean(axis=0)) / math.sqrt(len(x) - 1)


def trace_sqrt_product(a: np.ndarray, b: np.ndarray) -> float:
    """tr sqrt(S_a S_b) for the sample covariances of feature sets a (n, d) and b (m, d)."""
    return _trace_sqrt_product_centered(_scaled_centered(a), _scaled_centered(b))


def _trace_sqrt_product_centered(ca: np.ndarray, cb: np.ndarray) -> float:
    """trace_sqrt_product from the `_scaled_centered` feature sets."""
    if min(len(ca), len(cb)) <= ca.shape[1]:
        # S_a S_b = A^T A B^T B has the non-zero eigenvalues of (A B^T)(A B^T)^T: squared singular values.
        return float(np.linalg.svd(ca @ cb.T, compute_uv=False).sum())
    # Few dimensions: tr sqrt(S_a S_b) = tr sqrt(R S_b R) with R = S_a^(1/2), a symmetric PSD product.
    w, v = np.linalg.eigh(ca.T @ ca)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(root @ (cb.T @ cb) @ root)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between feature sets a (n, d) and b (m, d); needs n, m >= 2."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    diff = np.asarray(a, np.float64).mean(axis=0) - np.asarray(b, np.float64).mean(axis=0)
    ca, cb = _scaled_centered(a), _scaled_centered(b)
    trace_a = float((ca ** 2).sum())
    trace_b = float((cb ** 2).sum())
    return float(diff @ diff + trace_a + trace_b - 2 * _trace_sqrt_product_centered(ca, cb))


def mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 (Bińkowski et al. 2018)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n, m, d = len(a), len(b), a.shape[1]
    k_aa, k_bb, k_ab = ((a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3)
    return float((k_aa.sum() - np.trace(k_aa)) / (n * (n - 1)) + (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
                 - 2 * k_ab.mean())


def kid(a: np.ndarray, b: np.ndarray, subset_size: int, subsets: int, rng: np.random.Generator) -> np.ndarray:
    """KID estimates: one on the full sets when either is no larger than `subset_size`, else one per
    random subset pair (the mean is the KID; their spread is its uncertainty)."""
    if len(a) < 2 or len(b) < 2:
        return np.array([math.nan])
    if min(len(a), len(b)) <= subset_size:
        return np.array([mmd2_unbiased(a, b)])
    return np.array([mmd2_unbiased(a[rng.choice(len(a), subset_size, replace=False)],
                                   b[rng.choice(len(b), subset_size, replace=False)]) for _ in range(subsets)])


def equal_size_subsample(features_by_method: dict[str, np.ndarray], seed: int, *key: object) -> dict[str, np.ndarray]:
    """The same number of images for every method (the smallest count), chosen with a seeded draw."""
    n = min(len(f) for f in features_by_method.values())
    return {method: f[np.sort(seeded_rng(seed, "fid-subsample", *key, method).choice(len(f), n, replace=False))]
            for method, f in features_by_method.items()}


def fid_rows(suffix: str, model: str, fv_features: dict[str, np.ndarray], real: np.ndarray, fid_cfg: dict,
             bootstrap: dict, seed: int, note: str) -> list[dict]:
    """`fid<suffix>` and `kid<suffix>` rows per method against the natural-image features `real`."""
    rows = []
    for method, feats in equal_size_subsample(fv_features, seed, model, suffix).items():
        n_note = f"{note}; N = {len(feats)} FVs per method vs {len(real)} natural images"
        low, high = bootstrap_ci(frechet_distance, (feats, real), bootstrap["iterations"], bootstrap["confidence"],
                                 seed, "fid", suffix, model, method, recenter=True)
        rows.append(row(f"fid{suffix}", model, method, frechet_distance(feats, real), n=len(feats),
                        ci=(max(low, 0.0), high), note=f"{n_note}; bias-corrected bootstrap CI"))
        rng = seeded_rng(seed, "kid", suffix, model, method)
        estimates = kid(feats, real, fid_cfg["kid_subset_size"], fid_cfg["kid_subsets"], rng)
        if len(estimates) > 1:
            tail = (1 - bootstrap["confidence"]) / 2 * 100
            kid_ci = tuple(float(v) for v in np.percentile(estimates, [tail, 100 - tail]))
            kid_note = f"{n_note}; mean of {len(estimates)} subsets of {fid_cfg['kid_subset_size']}, CI = their spread"
        else:
            kid_ci = bootstrap_ci(mmd2_unbiased, (feats, real), bootstrap["iterations"], bootstrap["confidence"],
                                  seed, "kid", suffix, model, method, recenter=True)
            kid_note = f"{n_note}; full sets, bias-corrected bootstrap CI"
        rows.append(row(f"kid{suffix}", model, method, float(np.mean(estimates)), n=len(feats), ci=kid_ci,
                        note=kid_note))
    return rows
