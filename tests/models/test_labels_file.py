"""A declared model whose outputs are not ImageNet-1k's: its labels file (`models.declare.<name>.classes`)
names the class targets, gives each its output index, is checked against the model's outputs, and is
hashed into provenance and models.assets, so an edited file is reported by `vitalstudy audit`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from tiny_models import tiny_cnn

from vitalstudy.cli import main
from vitalstudy.config import load
from vitalstudy.errors import ConfigError
from vitalstudy.fv.settings import job_settings
from vitalstudy.targets import parse_target

REPO = Path(__file__).resolve().parents[2]
LABELS = "cat\tHouse cat\ndog\nsea_bird\tSea bird\n"


@pytest.fixture
def own_model(tmp_path, monkeypatch):
    """A run folder with a 3-output import-path model, its weights and labels file; returns the config
    files and a function writing an overlay over them."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    Path("weights").mkdir()
    torch.manual_seed(0)
    torch.save(tiny_cnn(width=4, num_classes=3).state_dict(), "weights/tiny.pth")
    Path("labels.txt").write_text(LABELS, encoding="utf-8")

    def configure(targets=("sea_bird", "cat"), **declaration) -> list[str]:
        overlay = {"models": {"targets": ["tiny"], "held_out": None, "declare": {"tiny": {
            "source": "import", "factory": "tiny_models:tiny_cnn", "kwargs": {"width": 4, "num_classes": 3},
            "input_size": 32, "weights": "weights/tiny.pth", "classes": "labels.txt", **declaration}}},
            "targets": {"classes": list(targets), "neurons": [], "circuits": [], "accentuations": []},
            "metrics": {"fid": {"feature_model": "tiny"}},
            "generate": {"methods": ["fourier"], "fourier": {"steps": 2}}}
        Path("config/tiny.yaml").write_text(yaml.safe_dump(overlay))
        return ["config/config.yaml", "config/tiny.yaml"]
    return configure


def test_class_targets_take_their_output_index_and_name_from_the_labels_file(own_model):
    from vitalstudy.data.classes import classes_for

    config = load(own_model())
    classes = classes_for("tiny")
    target = parse_target("sea_bird", classes=classes)
    assert target.as_dict() == {"kind": "class", "id": "sea_bird", "wnid": "sea_bird", "class_index": 2,
                                "label": "Sea bird"}
    assert parse_target("head_c3", classes=classes).kind == "neuron"
    with pytest.raises(ConfigError, match=r"'n07920052' is neither a class of labels.txt"):
        parse_target("n07920052", classes=classes)
    assert set(config["models"]["assets"]["tiny"]) == {"weights/tiny.pth", "labels.txt"}


@pytest.mark.parametrize("change, message", [
    ({"targets": ["sea_bird", "dgo"]},
     r"^targets.classes\[1\]: 'dgo' is not a class of labels.txt \(cat, dog, sea_bird\) of tiny; nearest: dog$"),
    ({"targets": ["n07920052"]}, r"^targets.classes\[0\]: 'n07920052' is not a class of labels.txt"),
    ({"labels": "cat\ndog\n"}, r"^models.declare.tiny.classes: tiny has 3 outputs but labels.txt has 2 classes$"),
    ({"labels": "cat\nconv_c1\nbird\n"},
     r"^models.declare.tiny.classes: labels.txt, line 2: id 'conv_c1' looks like an inner-neuron id"),
    ({"declaration": {"classes": None}},
     r"^models.declare.tiny.classes: tiny has 3 outputs but without it the classes are ImageNet-1k's 1000"),
    ({"declaration": {"classes": "absent.txt"}}, r"^models.declare.tiny.classes: labels file absent.txt does not exist$"),
])
def test_config_errors_name_the_key_and_the_nearest_ids(own_model, change, message):
    if "labels" in change:
        Path("labels.txt").write_text(change["labels"], encoding="utf-8")
    files = own_model(**({"targets": change["targets"]} if "targets" in change else {}), **change.get("declaration", {}))
    with pytest.raises(ConfigError, match=message):
        load(files)


def test_edited_labels_file_is_reported_by_the_audit(own_model, capsys):
    files = own_model()
    config = load(files)
    stage = {"seed": 0, "device": "cpu", "models": config["models"], "concepts": [],
             "generate": job_settings(config["generate"], "fourier")}
    marker = "results/demo/02_fv/tiny/fourier/_jobs/seed0-b000.json"
    assert main(["generate", "--stage-config", json.dumps(stage), "--run-dir", "results/demo", "--model", "tiny",
                 "--method", "fourier", "--seed", "0", "--targets", "sea_bird", "cat", "--marker", marker]) == 0
    assert json.loads(Path(marker).read_text())["inputs"] == config["models"]["assets"]["tiny"]
    sidecar = json.loads(Path("results/demo/02_fv/tiny/fourier/sea_bird/seed0.json").read_text())
    assert sidecar["target"]["class_index"] == 2 and sidecar["target"]["label"] == "Sea bird"
    capsys.readouterr()
    assert main(["audit", "results/demo", "--no-plan", "--configfile", *files]) == 0

    Path("labels.txt").write_text(LABELS.replace("Sea bird", "Seabird"), encoding="utf-8")
    assert main(["audit", "results/demo", "--no-plan", "--configfile", *files]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PROBLEM")]
    assert problems == [f"PROBLEM: {marker}: input labels.txt changed since the stage read it (its outputs are stale)"]
    assert load(files)["models"]["assets"]["tiny"]["labels.txt"] != config["models"]["assets"]["tiny"]["labels.txt"]
