"""A tiny run directory with stage-0/1 outputs (bundled photos, EfficientNet-Lite0) for generation tests."""

import json
import subprocess
import sys

import pytest

from vitalstudy.data.sources import build_index
from vitalstudy.io import sha256_file, write_json
from vitalstudy.references.select import select_class_references
from vitalstudy.targets import parse_target

TINY_VITAL = {"steps": 6, "lr": 1.0, "betas": [0.5, 0.9], "warmup": 2, "jitter": 4}
CHECKPOINT_EVERY = 2  # a generate-level setting (every method checkpoints alike)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    index, _ = build_index({"source": "bundled"}, seed=0)
    for wnid in ("n07920052", "n02123159", "n11939491"):
        selection = select_class_references(index, wnid, count=3, seed=0, augment={})
        for ref in selection.references:
            ref["sha256"] = sha256_file(ref["path"])
        write_json(run / "01_references" / "efficientnet_lite0" / f"{wnid}.json",
                   {"target": parse_target(wnid).as_dict(), "references": selection.references})
    return run


def generate_cli(run, targets, seed=0, steps=6, batch_size=1, method="vital", marker=None, **popen):
    config = {"seed": seed, "device": "cpu", "models": {"weights": {}},
              "generate": {"batch_size": batch_size, "checkpoint_every": CHECKPOINT_EVERY,
                           "vital": {**TINY_VITAL, "steps": steps}}}
    args = [sys.executable, "-m", "vitalstudy.cli", "generate", "--stage-config", json.dumps(config), "--run-dir",
            str(run), "--model", "efficientnet_lite0", "--method", method, "--seed", str(seed), "--targets", *targets,
            "--marker", str(marker or run / "marker.json")]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
