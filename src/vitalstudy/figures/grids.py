"""Qualitative figures assembled from stage-2 images: the paper's Fig. 3 (methods x targets, one
seed) and Fig. 4 (circuits: each class with its most relevant last-layer channels and their FVs).
Images are shown as generated (no resampling beyond display); a method without an image for a
target gets an empty cell that says so, never a stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image

from vitalstudy.figures.methods import method_name
from vitalstudy.figures.style import placeholder
from vitalstudy.io import read_json
from vitalstudy.data.classes import imagenet_classes
from vitalstudy.metrics.images import FVKey

CELL = 1.6  # inches per image


def fv_path(fv_root: str | os.PathLike, model: str, method: str, target: str, seed: int) -> Path:
    return FVKey(method, target, seed).png(fv_root, model)


def target_title(target: str, images: list[Path]) -> str:
    """A class target's label as generation recorded it in an image's sidecar (the model's class
    list: ImageNet-1k or its labels file), else ImageNet-1k's name; other targets: their id."""
    for sidecar in (p.with_suffix(".json") for p in images):
        try:
            recorded = read_json(sidecar)["target"]
            kind, label = recorded.get("kind"), recorded.get("label")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # no sidecar (or not one generation wrote): the next method's
        return str(label or target) if kind == "class" else target
    classes = imagenet_classes()
    return classes.name(target) if target in classes else target


def _show(ax, path: Path) -> None:
    if path.is_file():
        with Image.open(path) as image:
            ax.imshow(image.convert("RGB"))
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        placeholder(ax, "no image")
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_grid(fv_root, model: str, methods: list[str], targets: list[str], seed: int):
    """Rows: methods; columns: targets (Fig. 3 layout)."""
    fig, axes = plt.subplots(len(methods), len(targets), figsize=(CELL * len(targets) + 0.8, (CELL + 0.3) * len(methods) + 0.4),
                             squeeze=False, layout="constrained")
    for r, method in enumerate(methods):
        for c, target in enumerate(targets):
            ax = axes[r, c]
            _show(ax, fv_path(fv_root, model, method, target, seed))
            if r == 0:
                ax.set_title(target_title(target, [fv_path(fv_root, model, m, target, seed) for m in methods]),
                             fontsize=8)
            if c == 0:
                ax.set_ylabel(method_name(method), fontsize=9)
    fig.suptitle(f"{model}, seed {seed}", fontsize=10)
    return fig


def read_circuit(path: str | os.PathLike) -> dict:
    """A circuit file (`01_references/<model>/_circuits/<wnid>.json`), channels by falling relevance."""
    circuit = read_json(path)
    circuit["channels"] = sorted(circuit["channels"], key=lambda ch: -ch["relevance"])
    return circuit


def plot_circuits(fv_root, model: str, methods: list[str], circuits: list[dict], seed: int):
    """Rows: classes; per row, each relevant channel's FVs by every method (Fig. 4 layout)."""
    width = max(len(c["channels"]) for c in circuits) * len(methods)
    fig, axes = plt.subplots(len(circuits), width + 1, figsize=(CELL * (width + 1), (CELL + 0.5) * len(circuits) + 0.4),
                             squeeze=False, layout="constrained")
    for row, circuit in zip(axes, circuits):
        placeholder(row[0], f"{circuit['class']['label']}\n({circuit['class']['wnid']})\n{circuit['layer']} ->")
        row[0].texts[0].set(fontsize=9, color="black")
        cells = [(ch, m) for ch in circuit["channels"] for m in methods]
        for ax, (channel, method) in zip(row[1:], cells):
            _show(ax, fv_path(fv_root, model, method, channel["target"], seed))
            ax.set_title(f"c{channel['channel']} (R={channel['relevance']:.2f})\n{method_name(method)}", fontsize=7)
        for ax in row[1 + len(cells):]:
            ax.set_visible(False)
    fig.suptitle(f"Circuits of {model}: most relevant channels per class (seed {seed})", fontsize=10)
    return fig
