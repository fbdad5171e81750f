"""One look for every figure, and one way to save it.

The Agg backend is chosen before pyplot is imported so figures render on machines without a
display (cluster nodes, CI). Each figure is saved as PNG (for the report and README) and PDF (for a
paper), with fixed metadata so a re-run with the same inputs gives the same PDF bytes.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from vitalstudy.fv.registry import METHODS  # noqa: E402
from vitalstudy.io import atomic_path  # noqa: E402

# One fixed colour per method, so a method looks the same in every figure.
_PALETTE = sns.color_palette("colorblind")  # 10 colours; the registry gives each method one
REAL_COLOR = (0.6, 0.6, 0.6)


def method_color(method: str):
    """The method's colour (the registry's palette index), grey for real images, None (matplotlib's
    next colour) for a name the registry does not know."""
    if method in METHODS:
        return _PALETTE[METHODS[method].palette_index]
    return REAL_COLOR if method == "real" else None
DPI = 150


def apply_theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"svg.hashsalt": "vitalstudy", "pdf.compression": 6, "figure.dpi": DPI})


def save(fig, png: str | os.PathLike, pdf: str | os.PathLike | None = None) -> None:
    """Write PNG (+ PDF) atomically and close the figure."""
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        if path is None:
            continue
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight",
                        metadata={"Software": None} if fmt == "png" else {"CreationDate": None, "Creator": None,
                                                                        "Producer": None})
    plt.close(fig)


def save_table(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def placeholder(ax, text: str) -> None:
    """An empty panel that says why it is empty (a missing image, a method a model cannot run)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, color="0.4", wrap=True, transform=ax.transAxes)
