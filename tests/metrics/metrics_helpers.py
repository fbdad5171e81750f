"""Helpers of the metrics tests: stage-2 FV files written to the contract, from real photos (real
pixels, so the models' answers are meaningful)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from vitalstudy.data.sources import load_rgb

MODEL = "efficientnet_lite0"
CLASSES = ["n07920052", "n02123159", "n03773504"]  # espresso, tiger cat, missile (bundled photos)


def sidecar(model: str, method: str, target: str, seed: int, resolution=224, kind: str = "class") -> dict:
    return {"model": model, "method": method, "target": {"kind": kind, "id": target}, "seed": seed,
            "resolution": resolution, "hyperparameters": {"steps": 1},
            "compute": {"steps": 1, "forward_passes": 1, "backward_passes": 1, "seconds": 0.1, "device": "cpu"},
            "references": [], "versions": {"vitalstudy": "test"}}


def write_fv(fv_root: Path, model: str, method: str, target: str, seed: int, image: Image.Image,
             kind: str = "class", overrides: dict | None = None) -> Path:
    """Write seed<k>.png + seed<k>.json under 02_fv as stage 2 would; `overrides` replace sidecar fields."""
    folder = fv_root / model / method / target
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / f"seed{seed}.png", format="PNG")
    meta = sidecar(model, method, target, seed, image.size[0], kind) | (overrides or {})
    (folder / f"seed{seed}.json").write_text(json.dumps(meta))
    return folder / f"seed{seed}.png"


def fv_from_photo(path: str, method: str, seed: int, size: int = 224) -> Image.Image:
    """A deterministic stand-in FV: a crop of a real photo, degraded more for some methods."""
    rng = np.random.default_rng([seed, len(method)])
    photo = ImageOps.fit(load_rgb(path), (size, size))
    pixels = np.asarray(photo, dtype=np.float64)
    noise = {"vital": 5, "vital_lrp": 60}[method]
    pixels = np.clip(pixels + rng.normal(0, noise, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")
