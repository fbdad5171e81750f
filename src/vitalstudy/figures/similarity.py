"""Free-label answers scored by sentence-encoder similarity to the hidden class name (the paper's
Fig. 6c, per question in appendix Fig. 39): violins with the median and the 5 % and 95 %
quantiles marked, the summary the paper reports."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from vitalstudy.figures.methods import method_name, ordered_methods
from vitalstudy.figures.style import method_color

QUANTILES = {"q05": 0.05, "median": 0.5, "q95": 0.95}


def quantiles(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """5 %, 50 %, 95 % quantiles of the similarity per group (`q05`, `median`, `q95`)."""
    q = frame.groupby(by)["similarity"].quantile(list(QUANTILES.values())).unstack()
    return q.set_axis(list(QUANTILES), axis=1).reset_index()


def _violins(ax, frame: pd.DataFrame) -> None:
    """Violins of the methods in `frame`, median dot and 5 %/95 % bars, n under each."""
    methods = ordered_methods(frame["method"])
    sns.violinplot(data=frame, x="method", y="similarity", order=methods, hue="method", hue_order=methods,
                   palette={m: method_color(m) for m in methods}, inner=None, cut=0, density_norm="width",
                   linewidth=0.8, ax=ax, legend=False)
    for row in quantiles(frame, ["method"]).itertuples(index=False):
        x = methods.index(row.method)
        ax.hlines([row.q05, row.q95], x - 0.12, x + 0.12, colors="black", linewidth=1)
        ax.vlines(x, row.q05, row.q95, colors="black", linewidth=0.6)
        ax.scatter([x], [row.median], color="white", edgecolor="black", zorder=3, s=22)
    ax.set_xticks(range(len(methods)), [f"{method_name(m)}\nn={(frame['method'] == m).sum()}" for m in methods])
    ax.set_xlabel("")


def plot_methods(frame: pd.DataFrame, encoder: str, who: str):
    fig, ax = plt.subplots(figsize=(1.4 * frame["method"].nunique() + 2, 4))
    _violins(ax, frame)
    ax.set_ylabel("similarity of answer to hidden class name")
    ax.set_title(f"Free labels ({who})\n"
                 f"dot: median, bars: 5 % and 95 % quantiles; encoder {encoder}", fontsize=9)
    return fig


def plot_questions(frame: pd.DataFrame, encoder: str, who: str):
    questions = frame[["number", "label"]].drop_duplicates().sort_values("number")
    cols = min(3, len(questions))
    rows = math.ceil(len(questions) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, sharey=True)
    for ax, (number, label) in zip(axes.flat, questions.itertuples(index=False)):
        _violins(ax, frame[frame["number"] == number])
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylabel("similarity")
        ax.set_title(f"Q{number}: {label}", fontsize=9)
    for ax in axes.flat[len(questions):]:
        ax.set_visible(False)
    fig.suptitle(f"Free labels per question ({who}; encoder {encoder}); dot: median, bars: 5 %/95 % quantiles")
    fig.tight_layout()
    return fig
