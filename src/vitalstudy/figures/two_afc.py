"""The holistic 2AFC study (Zimmermann et al. protocol, paper section 4.3): share of trials where the
participant picked the more activating query image, and mean confidence, per method and unit kind.
Catch trials are left out (they check attention, not the method). The paper's reported numbers
are printed beside ours in the statistics CSV and drawn as markers only where they are comparable:
the study's model is the paper's (ResNet50), so its units are units of the paper's kind."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vitalstudy.figures.stats import figure_statistics, mean
from vitalstudy.figures.methods import method_name, ordered_methods
from vitalstudy.figures.style import method_color

# Paper, section 4.3 (n = 42, ResNet50): (unit kind, method) -> (accuracy, mean confidence 1..3).
PAPER_MODEL = "resnet50"
PAPER = {("class", "vital"): (1.0, 2.81), ("class", "maco"): (0.9286, 2.51), ("class", "fourier"): (0.9048, 2.45),
         ("class", "deepinversion"): (1.0, 2.62), ("inner neuron", "vital"): (0.9524, 2.43),
         ("inner neuron", "maco"): (0.8889, 2.14), ("inner neuron", "fourier"): (0.8730, 2.05)}
MEASURES = {"correct": "accuracy", "confidence": "mean confidence"}


def paper_comparable(models: set) -> bool:
    """Whether the paper's numbers describe the same kind of unit: every question's model is the paper's."""
    return models == {PAPER_MODEL}


def statistics(trials: pd.DataFrame, bootstrap: dict, seed: int, paper: bool = True) -> pd.DataFrame:
    """Per unit kind and measure: estimates with participant-bootstrap CIs and method comparisons,
    with the paper's value beside each estimate when `paper` (``paper_comparable``), else empty."""
    frames = []
    for unit, part in trials.groupby("unit", sort=True):
        for column, measure in MEASURES.items():
            table = figure_statistics(part.dropna(subset=[column]), column, measure, mean, bootstrap, seed, "two_afc",
                                      unit)
            position = list(MEASURES).index(column)
            table["paper"] = [PAPER.get((unit, m), (np.nan, np.nan))[position] if r == "estimate" and paper
                              else np.nan for r, m in zip(table["row"], table["method"])]
            frames.append(table.assign(unit=unit))
    out = pd.concat(frames, ignore_index=True)
    return out[["unit"] + [c for c in out.columns if c != "unit"]]


def plot(stats_table: pd.DataFrame, who: str):
    """Estimates as dots with their intervals (a mean confidence of 1 stays visible), grouped by unit
    kind; the paper's values as black crosses where the table has them."""
    estimates = stats_table[stats_table["row"] == "estimate"]
    units = sorted(estimates["unit"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, measure in zip(axes, MEASURES.values()):
        part = estimates[estimates["measure"] == measure]
        methods = ordered_methods(part["method"])
        step = 0.7 / len(methods)
        for i, method in enumerate(methods):
            rows = part[part["method"] == method].set_index("unit").reindex(units)
            x = np.arange(len(units)) + (i - (len(methods) - 1) / 2) * step
            err = np.vstack([rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]])
            ax.errorbar(x, rows["estimate"], yerr=np.nan_to_num(err), fmt="o", markersize=8, capsize=3,
                        color=method_color(method), label=method_name(method))
            if rows["paper"].notna().any():
                ax.scatter(x, rows["paper"], marker="x", color="black", s=40, zorder=3,
                           label="paper (ResNet50, n = 42)" if i == 0 else None)
        ax.set_xticks(range(len(units)), [f"{u} units" for u in units])
        ax.set_xlim(-0.6, len(units) - 0.4)
        ax.set_title(measure)
    axes[0].set_ylim(0, 1.05)
    axes[0].yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    axes[0].axhline(0.5, color="0.5", linestyle=":", linewidth=1)
    axes[1].set_ylim(0.9, 3.1)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    paper = "; x: paper" if estimates["paper"].notna().any() else ""
    fig.suptitle(f"2AFC: which query activates the unit more? ({who}; 95 % participant-bootstrap CIs{paper})",
                 fontsize=10)
    fig.tight_layout()
    return fig
