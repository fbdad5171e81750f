"""Likert ratings per method (the paper's Fig. 6a word task, 6b reference task) and per question
(appendix Figs. 37, 38): 100 % stacked bars of the rating distribution, n beside each bar, so the
whole distribution is visible rather than only a mean."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from vitalstudy.figures.methods import method_name, ordered_methods


def shares(frame: pd.DataFrame, by: list[str], scale: tuple[int, int]) -> pd.DataFrame:
    """Share of each rating level (columns lo..hi) per group; rows sum to 1."""
    levels = list(range(scale[0], scale[1] + 1))
    counts = frame.groupby(by)["value"].value_counts().unstack(fill_value=0).reindex(columns=levels, fill_value=0)
    return counts.div(counts.sum(axis=1), axis=0)


def _stacked(ax, table: pd.DataFrame, counts: pd.Series, scale: tuple[int, int], colors) -> None:
    left = np.zeros(len(table))
    for level, color in zip(table.columns, colors):
        ax.barh(range(len(table)), table[level], left=left, color=color, edgecolor="white", linewidth=0.5,
                label=str(level))
        left += table[level].to_numpy()
    ax.set_yticks(range(len(table)), [method_name(m) for m in table.index])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    for y, n in enumerate(counts.reindex(table.index)):
        ax.text(1.01, y, f"n={n}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
    ax.grid(axis="y", visible=False)


def plot_methods(frame: pd.DataFrame, scale: tuple[int, int], title: str, who: str):
    """One stacked bar per method over all questions of the section; `who`: the participants
    (``StudyFiles.who``: says when they are simulated)."""
    methods = ordered_methods(frame["method"])
    table = shares(frame, ["method"], scale).reindex(methods)
    colors = sns.color_palette("RdYlGn", scale[1] - scale[0] + 1)
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(methods) + 1.6))
    _stacked(ax, table, frame.groupby("method").size(), scale, colors)
    ax.set_title(f"{title} ({who})")
    ax.set_xlabel(f"share of ratings ({scale[0]} = worst, {scale[1]} = best)")
    ax.legend(title="rating", ncols=len(colors), loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    return fig


def plot_questions(frame: pd.DataFrame, scale: tuple[int, int], title: str, who: str):
    """One panel per question (Q number and label), one stacked bar per method in it."""
    methods = ordered_methods(frame["method"])
    questions = frame[["number", "label"]].drop_duplicates().sort_values("number")
    cols = min(4, len(questions))
    rows = math.ceil(len(questions) / cols)
    colors = sns.color_palette("RdYlGn", scale[1] - scale[0] + 1)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 0.35 * len(methods) * rows + 1.1 * rows + 0.6),
                             squeeze=False, sharex=True)
    for ax, (number, label) in zip(axes.flat, questions.itertuples(index=False)):
        part = frame[frame["number"] == number]
        table = shares(part, ["method"], scale).reindex([m for m in methods if m in set(part["method"])])
        _stacked(ax, table, part.groupby("method").size(), scale, colors)
        ax.set_title(f"Q{number}: {label}", fontsize=9)
    for ax in axes.flat[len(questions):]:
        ax.set_visible(False)
    fig.suptitle(f"{title}, per question ({who})")
    fig.tight_layout()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="rating", ncols=len(colors), loc="upper center", frameon=False,
               bbox_to_anchor=(0.5, 0))
    return fig
