"""Seeded percentile-bootstrap intervals, shared by every metric so that all CIs mean the same."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from vitalstudy.seeding import rng as seeded_rng


def bootstrap_ci(statistic: Callable[..., float], samples: tuple[np.ndarray, ...], iterations: int,
                 confidence: float, seed: int, *key: object, recenter: bool = False) -> tuple[float, float]:
    """Percentile interval of `statistic(*samples)`, each sample resampled with replacement along axis 0.

    The random stream depends on (seed, key) only, so an interval does not change when other
    methods or targets are added to a run. `recenter` shifts the interval by the bootstrap's bias
    estimate (estimate - mean of the replicates): statistics such as FID and KID are inflated by the
    duplicated images of every resample, so their raw percentile interval can miss the estimate.
    Returns (nan, nan) when `iterations` is 0 or a sample has fewer than two items.
    """
    if iterations <= 0 or any(len(s) < 2 for s in samples):
        return math.nan, math.nan
    rng = seeded_rng(seed, "bootstrap", *key)
    values = [statistic(*(s[rng.integers(0, len(s), len(s))] for s in samples)) for _ in range(iterations)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    shift = statistic(*samples) - float(np.nanmean(values)) if recenter else 0.0
    return float(low + shift), float(high + shift)
