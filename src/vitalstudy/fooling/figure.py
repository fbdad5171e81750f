"""The fooling-circuit figure and table: each method's visualization of both units on the original
and the manipulated model beside the planted pattern, and the pattern score with its interval."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from vitalstudy.io import read_json  # noqa: E402

UNIT_TITLES = {"class": "class logit", "unit": "inner unit"}


def _fmt(mean, low, high) -> str:
    if np.isnan(low):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def table(report: dict, summary: pd.DataFrame) -> str:
    lines = ["## Natural images: the manipulation's invariance", "",
             "| unit | images | top-1 changed | top-1 difference (pp) | unit Pearson r | max abs unit difference | "
             "images over threshold | threshold |", "|---|---|---|---|---|---|---|---|"]
    for key, entry in report["natural_images"].items():
        for part in ("all_images", "held_out_half"):
            inv = entry[part]
            lines.append(f"| {UNIT_TITLES[key]} ({part.replace('_', ' ')}) | {inv['images']} | {inv['top1_changed']} | "
                         f"{inv['top1_difference_pp']:.2f} | {inv['unit_pearson_r']:.6f} | "
                         f"{inv['unit_max_abs_difference']:.3g} | {inv['images_over_threshold']} | "
                         f"{entry['threshold']:.3f} |")
    lines += ["", f"Planted-pattern score of the pattern itself: {report['pattern_score_of_the_pattern']:.3f}; "
              f"largest on the {report['images']} natural images: {report['natural_pattern_score_max']:.4f}.", "",
              f"## Per method (mean [95 % t-interval] over seeds {report['seeds']})", "",
              "| unit | method | measure | original | manipulated | manipulated - original |",
              "|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {UNIT_TITLES[r.unit]} | {r.method} | {r.measure} | "
                     f"{_fmt(r.original_mean, r.original_low, r.original_high)} | "
                     f"{_fmt(r.manipulated_mean, r.manipulated_low, r.manipulated_high)} | "
                     f"{_fmt(r.difference_mean, r.difference_low, r.difference_high)} |")
    return "\n".join(lines) + "\n"


def draw(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    report = read_json(out_dir / "fooling.json")
    measures = pd.read_csv(out_dir / "measures.csv")
    summary = pd.read_csv(out_dir / "summary.csv")
    (out_dir / "fooling.md").write_text(table(report, summary))
    methods = list(dict.fromkeys(measures.method))
    seed = min(report["seeds"])
    columns = [(u, v) for u in ("class", "unit") for v in ("original", "manipulated")]
    fig = plt.figure(figsize=(2.0 * len(columns) + 6.5, 2.0 * (len(methods) + 1)))
    grid = fig.add_gridspec(len(methods) + 1, len(columns) + 2, width_ratios=[1] * len(columns) + [1.6, 1.6])
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(Image.open(report["pattern_png"]))
    ax.set_title("planted pattern", fontsize=9)
    ax.axis("off")
    for c in range(1, len(columns)):
        fig.add_subplot(grid[0, c]).axis("off")
    for r, method in enumerate(methods, start=1):
        for c, (unit, variant) in enumerate(columns):
            ax = fig.add_subplot(grid[r, c])
            row = measures[(measures.method == method) & (measures.unit == unit) & (measures.variant == variant)
                           & (measures.seed == seed)]
            ax.set_xticks([])
            ax.set_yticks([])
            if len(row):
                ax.imshow(Image.open(row.png.iloc[0]))
                ax.set_xlabel(f"score {row.pattern_score.iloc[0]:.2f}", fontsize=8)
            else:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            if r == 1:
                ax.set_title(f"{UNIT_TITLES[unit]}\n{variant}", fontsize=9)
            if c == 0:
                ax.set_ylabel(method, fontsize=9)
    for c, unit in enumerate(("class", "unit")):
        ax = fig.add_subplot(grid[1:, len(columns) + c])
        part = summary[(summary.unit == unit) & (summary.measure == "pattern_score")]
        y = np.arange(len(part))
        for offset, variant, colour in ((-0.18, "original", "#4c72b0"), (0.18, "manipulated", "#dd8452")):
            mean = part[f"{variant}_mean"].to_numpy()
            err = np.vstack([mean - part[f"{variant}_low"].to_numpy(), part[f"{variant}_high"].to_numpy() - mean])
            ax.barh(y + offset, mean, height=0.34, color=colour, label=variant,
                    xerr=np.nan_to_num(err), capsize=2)
        ax.set_yticks(y, part.method)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("planted-pattern score (95 % CI)")
        ax.set_title(UNIT_TITLES[unit], fontsize=9)
        if c == 0:
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Fooling-circuit test: visualizations (seed {seed}) on the original and the manipulated model",
                 fontsize=11)
    fig.tight_layout()
    path = out_dir / "fooling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
