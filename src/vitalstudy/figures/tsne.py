"""The paper's Fig. 5 from the metrics stage's t-SNE coordinates (`03_metrics/<model>/tsne.csv`):
natural images as large translucent circles coloured by class, each method's FVs as a filled
symbol of its class colour. An FV that lands inside its class's cloud has features like the real images'."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from vitalstudy.errors import VitalStudyError
from vitalstudy.figures.methods import method_marker, method_name, ordered_methods
from vitalstudy.figures.style import placeholder

COLUMNS = {"kind", "method", "target", "label", "x", "y"}


def read(path: str | os.PathLike) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"target": str, "seed": str}, keep_default_na=False)
    missing = COLUMNS - set(frame.columns)
    if missing:
        raise VitalStudyError(f"{path}: missing columns {', '.join(sorted(missing))}")
    return frame


def neighbour_agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method: share of FVs whose nearest natural image in the embedding is of the FV's class,
    a number for what the figure shows (chance: the share of natural images of that class)."""
    natural = frame[frame["kind"] == "natural"]
    fvs = frame[frame["kind"] == "fv"]
    if natural.empty or fvs.empty:
        return pd.DataFrame(columns=["method", "n_fvs", "nearest_natural_same_class", "chance"])
    points = natural[["x", "y"]].to_numpy()
    nearest = np.argmin(((fvs[["x", "y"]].to_numpy()[:, None, :] - points[None]) ** 2).sum(-1), axis=1)
    same = natural["target"].to_numpy()[nearest] == fvs["target"].to_numpy()
    chance = fvs["target"].map(natural["target"].value_counts(normalize=True)).fillna(0).to_numpy()
    table = pd.DataFrame({"method": fvs["method"].to_numpy(), "same": same, "chance": chance})
    out = table.groupby("method", sort=False).agg(n_fvs=("same", "size"), nearest_natural_same_class=("same", "mean"),
                                                  chance=("chance", "mean")).reset_index()
    return out.set_index("method").loc[ordered_methods(out["method"])].reset_index()


def plot(frame: pd.DataFrame, model: str):
    if frame.empty:
        fig, ax = plt.subplots(figsize=(5, 3))
        placeholder(ax, f"no t-SNE points for {model} (see the metrics log)")
        return fig
    labels = sorted(frame["label"].unique())
    colors = dict(zip(labels, sns.color_palette("tab10" if len(labels) <= 10 else "husl", len(labels))))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    natural = frame[frame["kind"] == "natural"]
    fvs = frame[frame["kind"] == "fv"]
    for method in ordered_methods(fvs["method"]):
        part = fvs[fvs["method"] == method]
        ax.scatter(part["x"], part["y"], c=[colors[label] for label in part["label"]], marker=method_marker(method),
                   s=90, edgecolors="black", linewidths=0.8, zorder=2)
    # Real images on top, large and translucent, so that a class with a single real image still shows it.
    ax.scatter(natural["x"], natural["y"], c=[colors[label] for label in natural["label"]], alpha=0.55, s=160,
               linewidths=0, zorder=3)
    class_handles = [plt.Line2D([], [], marker="o", linestyle="", color=colors[label], label=label) for label in labels]
    method_handles = [plt.Line2D([], [], marker=method_marker(m), linestyle="", color="0.3", markeredgecolor="black",
                                 markersize=8, label=method_name(m)) for m in ordered_methods(fvs["method"])]
    method_handles.append(plt.Line2D([], [], marker="o", linestyle="", color="0.3", alpha=0.55, markersize=11,
                                     label=f"real images ({len(natural)})"))
    # A figure legend: bbox_inches="tight" sizes the saved figure to include it.
    fig.legend(handles=class_handles, title="class", loc="upper left", bbox_to_anchor=(1.0, 0.97), frameon=False,
               ncol=1 if len(labels) <= 12 else 2)
    ax.legend(handles=method_handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), frameon=False,
              ncol=len(method_handles))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"t-SNE of {model} penultimate features")
    fig.tight_layout()
    return fig
