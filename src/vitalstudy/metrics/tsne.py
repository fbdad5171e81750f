"""t-SNE coordinates of penultimate features, natural images and FVs together (the paper's Fig. 5):
where a method's FV of a class lands relative to the natural images of that class."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.manifold import TSNE

COLUMNS = ["kind", "method", "target", "label", "seed", "image", "x", "y"]
EXACT_UP_TO = 1000  # points; exact t-SNE is O(N^2) but faster and more accurate than Barnes-Hut when small


def embed(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """(N, D) -> (N, 2). Perplexity is capped below N (t-SNE requires it); PCA init, seeded."""
    perplexity = min(float(perplexity), max(1.0, (len(features) - 1) / 3))
    method = "exact" if len(features) <= EXACT_UP_TO else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", method=method, random_state=seed % (2**32))
    return tsne.fit_transform(np.asarray(features, dtype=np.float64))


def coordinates_table(points: pd.DataFrame, features: np.ndarray, perplexity: float, seed: int) -> pd.DataFrame:
    """`points` (kind, method, target, label, seed, image) with x, y added."""
    xy = embed(features, perplexity, seed)
    return points.assign(x=xy[:, 0], y=xy[:, 1])
