"""A swapped weight file: the generation job that read it is reported by `vitalstudy audit`, and
the file's sha256 in the resolved config (models.assets, part of every model job's parameters)
changes, so Snakemake re-runs the jobs that use the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import yaml
from tiny_models import tiny_cnn

from vitalstudy.cli import main
from vitalstudy.config import load
from vitalstudy.fv.settings import job_settings

REPO = Path(__file__).resolve().parents[2]


def _save_weights(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(tiny_cnn(width=4).state_dict(), path)


def test_swapped_weight_file_is_reported_and_changes_the_job_parameters(tmp_path, monkeypatch, capsys):
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    Path("weights").mkdir()
    _save_weights(Path("weights/tiny.pth"), seed=0)
    overlay = {"models": {"targets": ["tiny"], "held_out": None, "declare": {"tiny": {
        "source": "import", "factory": "tiny_models:tiny_cnn", "kwargs": {"width": 4}, "input_size": 32,
        "weights": "weights/tiny.pth"}}},
        "targets": {"classes": ["n07920052"], "neurons": [], "accentuations": []}, "metrics": {"fid": {"feature_model": "tiny"}},
        "generate": {"methods": ["fourier"], "fourier": {"steps": 2}}}
    Path("config/tiny.yaml").write_text(yaml.safe_dump(overlay))
    configfiles = ["config/config.yaml", "config/tiny.yaml"]
    config = load(configfiles)
    before = config["models"]["assets"]["tiny"]
    stage = {"seed": 0, "device": "cpu", "models": config["models"], "concepts": [],
             "generate": job_settings(config["generate"], "fourier")}
    marker = "results/demo/02_fv/tiny/fourier/_jobs/seed0-b000.json"
    assert main(["generate", "--stage-config", json.dumps(stage), "--run-dir", "results/demo", "--model", "tiny",
                 "--method", "fourier", "--seed", "0", "--targets", "n07920052", "--marker", marker]) == 0
    assert json.loads(Path(marker).read_text())["inputs"] == before  # the weight file, with its sha256
    capsys.readouterr()
    assert main(["audit", "results/demo", "--no-plan", "--configfile", *configfiles]) == 0

    _save_weights(Path("weights/tiny.pth"), seed=1)  # other weights, same file name
    assert main(["audit", "results/demo", "--no-plan", "--configfile", *configfiles]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PROBLEM")]
    assert problems == [f"PROBLEM: {marker}: input weights/tiny.pth changed since the stage read it (its outputs are stale)"]
    after = load(configfiles)["models"]["assets"]["tiny"]
    assert list(after) == ["weights/tiny.pth"] and after != before
