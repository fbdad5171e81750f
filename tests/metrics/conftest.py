"""Fixtures for the metrics tests: a run's image index of real bundled photos and stage-2 FV files
written to the contract from those photos (real pixels, so the models' answers are meaningful)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from vitalstudy.data.sources import build_index, load_rgb

REPO = Path(__file__).resolve().parents[2]
MODEL = "efficientnet_lite0"
CLASSES = ["n07920052", "n02123159", "n03773504"]  # espresso, tiger cat, missile (bundled photos)


def sample_dir() -> Path:
    return Path(os.environ.get("VITALSTUDY_SAMPLE_DIR", REPO.parent / "shared" / "data" / "imagenet-sample"))


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
    noise = {"vital": 5, "maco": 60, "fourier": 90, "deepinversion": 30, "vital_lrp": 10}[method]
    pixels = np.clip(pixels + rng.normal(0, noise, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory) -> Path:
    index, _ = build_index({"source": "bundled", "verify": True}, seed=0)
    path = tmp_path_factory.mktemp("index") / "images.csv"
    index.to_csv(path, index=False)
    return path


@pytest.fixture
def metrics_config() -> dict:
    """A validated config for the three bundled classes and one inner neuron of EfficientNet-Lite0."""
    from vitalstudy.config import validate

    return validate({
        "run": "t", "seed": 0, "device": "cpu", "images": {"source": "bundled"},
        "models": {"targets": [MODEL], "held_out": None},
        "targets": {"classes": CLASSES, "neurons": [{"layer": "head", "channels": [12]}]},
        "references": {"class_count": 2, "neuron_count": 3},
        "metrics": {"methods": {"class": ["vital", "maco"], "neuron": ["vital_lrp", "maco"]}, "seeds": [0, 1],
                    "bootstrap": {"iterations": 20}, "fid": {"feature_model": MODEL},
                    "clip": {"download": False}, "tsne": {"perplexity": 5}},
    })


@pytest.fixture
def fv_root(tmp_path, bundled_index, metrics_config) -> Path:
    """02_fv with every planned class FV of the config, made from the bundled photo of its class."""
    import pandas as pd

    index = pd.read_csv(bundled_index)
    root = tmp_path / "02_fv"
    for method in metrics_config["metrics"]["methods"]["class"]:
        for wnid in CLASSES:
            photo = index[index["wnid"] == wnid]["path"].iloc[0]
            for seed in metrics_config["metrics"]["seeds"]:
                write_fv(root, MODEL, method, wnid, seed, fv_from_photo(photo, method, seed))
    return root
