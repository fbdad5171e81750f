"""Path-similarity sanity check (after Geirhos et al., "Don't trust your eyes"): an FV can drive a
class logit through an activation path that natural images never take. Per hooked layer we rank-
correlate (Spearman) the FV's per-channel mean activations with the mean over natural images of its
own class and with the mean over natural images of the other classes; a faithful FV should be closer
to its own class at every layer, not only at the output.

Metric names carry the layer: `path_rho_same:<layer>` and `path_rho_other:<layer>`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from vitalstudy.metrics.longformat import row
from vitalstudy.metrics.stats import bootstrap_ci


def class_profiles(means: np.ndarray, wnids: list[str]) -> dict[str, np.ndarray]:
    """Mean channel profile (C,) of the natural images of each class."""
    wnids_arr = np.asarray(wnids)
    return {w: means[wnids_arr == w].mean(axis=0) for w in dict.fromkeys(wnids)}


def rank_correlations(fv_means: np.ndarray, fv_wnids: list[str], natural_means: np.ndarray,
                      natural_wnids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho of each FV with its class profile and with the profile of all other classes' images.

    NaN where a profile does not exist (no natural image of the class, or no other class).
    """
    profiles = class_profiles(natural_means, natural_wnids)
    natural_arr = np.asarray(natural_wnids)
    other_profiles = {}  # wnid -> mean profile of the other classes' images, None when there are none
    for wnid in dict.fromkeys(fv_wnids):
        others = natural_means[natural_arr != wnid]
        other_profiles[wnid] = others.mean(axis=0) if len(others) else None
    same, other = np.full(len(fv_means), np.nan), np.full(len(fv_means), np.nan)
    for i, (vector, wnid) in enumerate(zip(fv_means, fv_wnids, strict=True)):
        if wnid in profiles:
            same[i] = spearmanr(vector, profiles[wnid]).statistic
        if other_profiles[wnid] is not None:
            other[i] = spearmanr(vector, other_profiles[wnid]).statistic
    return same, other


def layer_rows(model: str, layer: str, methods: list[str], targets: list[str], seeds: list[int],
               same: np.ndarray, other: np.ndarray, bootstrap: dict, seed: int) -> list[dict]:
    """Per-image rows and per-method means (CI by bootstrap over images) for one layer."""
    rows = []
    methods_arr = np.asarray(methods)
    for name, values in ((f"path_rho_same:{layer}", same), (f"path_rho_other:{layer}", other)):
        rows += [row(name, model, m, v, target=t, seed=s, n=1)
                 for m, t, s, v in zip(methods, targets, seeds, values, strict=True)]
        for method in dict.fromkeys(methods):
            sample = values[(methods_arr == method) & ~np.isnan(values)]
            if not len(sample):
                continue
            ci = bootstrap_ci(np.mean, (sample,), bootstrap["iterations"], bootstrap["confidence"], seed,
                              name, model, method)
            rows.append(row(name, model, method, float(sample.mean()), n=len(sample), ci=ci,
                            note="mean Spearman rho over FVs"))
    return rows
