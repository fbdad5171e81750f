"""Does a classifier recognise an FV's class? Top-k hit rates over classes x seeds, in percent as the
paper reports them, for the target model (Table 1 "Acc.") and a held-out judge; CLIP zero-shot
reuses the same hit-rate rows. Per-image predictions (with the top-2 softmax scores of Table 4) are
kept beside the summary so that any number can be traced to images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitalstudy.data.classes import ClassList
from vitalstudy.metrics.longformat import row
from vitalstudy.metrics.stats import bootstrap_ci

PREDICTION_COLUMNS = ["judge", "method", "target", "seed", "true_index", "top1_index", "top1_label", "top1_prob",
                      "top2_index", "top2_label", "top2_prob", "correct"]


def topk_hits(scores: np.ndarray, true_index: np.ndarray, k: int) -> np.ndarray:
    """(N,) booleans: is the true class among the k highest scores of each row?"""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return (top == np.asarray(true_index)[:, None]).any(axis=1)


def _percent(hits: np.ndarray) -> float:
    return 100.0 * float(np.mean(hits))


def hit_rate_rows(metric: str, model: str, methods: list[str], hits: np.ndarray, bootstrap: dict, seed: int,
                  note: str) -> list[dict]:
    """One row per method: percentage of hits over its images, with a bootstrap CI over images."""
    methods_arr = np.asarray(methods)
    rows = []
    for method in dict.fromkeys(methods):
        sample = hits[methods_arr == method].astype(float)
        ci = bootstrap_ci(_percent, (sample,), bootstrap["iterations"], bootstrap["confidence"], seed,
                          metric, model, method)
        rows.append(row(metric, model, method, _percent(sample), n=len(sample), ci=ci, note=note))
    return rows


def predictions_table(judge: str, methods: list[str], targets: list[str], seeds: list[int],
                      logits: np.ndarray, true_index: np.ndarray, classes: ClassList) -> pd.DataFrame:
    """Per-image top-1/top-2 predictions of `judge` (its class list names them) with softmax scores
    (the paper's Table 4 columns)."""
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1)[:, :2]
    return pd.DataFrame(columns=PREDICTION_COLUMNS, data={
        "judge": judge, "method": methods, "target": targets, "seed": seeds, "true_index": true_index,
        "top1_index": order[:, 0], "top1_label": [classes.name(int(i)) for i in order[:, 0]],
        "top1_prob": probs[np.arange(len(probs)), order[:, 0]],
        "top2_index": order[:, 1], "top2_label": [classes.name(int(i)) for i in order[:, 1]],
        "top2_prob": probs[np.arange(len(probs)), order[:, 1]],
        "correct": order[:, 0] == true_index,
    })
