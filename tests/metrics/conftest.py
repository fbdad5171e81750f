"""Fixtures for the metrics tests: a run's image index of the bundled real photos, a validated config
and the stage-2 FVs it plans (stand-ins made from those photos)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from metrics_helpers import CLASSES, MODEL, fv_from_photo, write_fv
from vitalstudy.data.sources import build_index


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
        "generate": {"methods": ["vital", "vital_lrp"], "seeds": [0, 1]},
        "metrics": {"bootstrap": {"iterations": 20}, "fid": {"feature_model": MODEL},
                    "clip": {"download": False}, "tsne": {"perplexity": 5}},
    })


@pytest.fixture
def fv_root(tmp_path, bundled_index, metrics_config) -> Path:
    """02_fv with every planned class FV of the config, made from the bundled photo of its class."""
    index = pd.read_csv(bundled_index)
    root = tmp_path / "02_fv"
    for method in metrics_config["generate"]["methods"]:
        for wnid in CLASSES:
            photo = index[index["wnid"] == wnid]["path"].iloc[0]
            for seed in metrics_config["generate"]["seeds"]:
                write_fv(root, MODEL, method, wnid, seed, fv_from_photo(photo, method, seed))
    return root
