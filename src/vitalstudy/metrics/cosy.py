"""AUC and MAD for inner-neuron FVs (Kopf et al., CoSy; the paper's Table 3).

A neuron's activation on an image is the spatial mean of its channel. AUC: how well that activation
separates the FVs (label 1) from the control images (label 0), ROC-AUC as scikit-learn computes it.
MAD: (mean(A_syn) - mean(A_control)) / std(A_control), the population std as in CoSy's code. The
control set is the neuron's top-k natural images, i.e. the references stage 1 selected for it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from vitalstudy.metrics.longformat import row
from vitalstudy.metrics.stats import bootstrap_ci


def auc(synthetic: np.ndarray, control: np.ndarray) -> float:
    labels = np.r_[np.ones(len(synthetic)), np.zeros(len(control))]
    return float(roc_auc_score(labels, np.r_[synthetic, control]))


def mad(synthetic: np.ndarray, control: np.ndarray) -> float:
    return float((np.mean(synthetic) - np.mean(control)) / np.std(control))


def neuron_rows(model: str, method: str, target: str, synthetic: np.ndarray, control: np.ndarray,
                note: str) -> list[dict]:
    """`auc` and `mad` of one method's FVs of one neuron (n = its FVs, the control size in the note)."""
    note = f"{note}; {len(control)} control images"
    return [row(name, model, method, fn(synthetic, control), target=target, n=len(synthetic), note=note)
            for name, fn in (("auc", auc), ("mad", mad))]


def summary_rows(model: str, per_neuron: list[dict], bootstrap: dict, seed: int) -> list[dict]:
    """Mean AUC / MAD over neurons per method (Table 3 averages 90 neurons), CI by bootstrap over neurons."""
    rows = []
    keys = dict.fromkeys((r["metric"], r["method"]) for r in per_neuron)
    for metric, method in keys:
        values = np.array([r["value"] for r in per_neuron if (r["metric"], r["method"]) == (metric, method)])
        ci = bootstrap_ci(np.mean, (values,), bootstrap["iterations"], bootstrap["confidence"], seed,
                          metric, model, method)
        rows.append(row(metric, model, method, float(np.mean(values)), n=len(values), ci=ci,
                        note=f"mean over {len(values)} neurons"))
    return rows
