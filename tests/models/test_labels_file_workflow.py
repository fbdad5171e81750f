"""A user's own 3-class model (tests/models/tiny_models.py, random weights in a local .pth) with a
labels file: its class ids are the run's class targets, its images a folder of `<id>_*.jpg`, and
references -> VITAL and Fourier -> metrics -> study forms use the file's output order and names.
Then the labels file is edited: `vitalstudy audit` reports it, and Snakemake would re-run what read it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from test_own_models_workflow import REPO, _env

from tests.conftest import workflow_workdir

RUN = "labels-file"
LABELS = "# tiny 3-class model: one line per output, in output order\ncat\tHouse cat\ndog\tDog\nsea_bird\tSea bird\n"
TARGETS = ["sea_bird", "cat"]  # not the file's order: output indices 2 and 0
SAMPLE = {"cat": ["n02123159", "n02123045", "n02124075"], "dog": ["n02099601", "n02085620", "n02088364"],
          "sea_bird": ["n02058221", "n02051845", "n02056570"]}  # real photos from the ImageNet sample


def _images(work, imagenet_sample):
    folder = work / "photos"
    folder.mkdir()
    for class_id, wnids in SAMPLE.items():
        for k, wnid in enumerate(wnids):
            source = next(imagenet_sample.glob(f"{wnid}_*"))
            shutil.copyfile(source, folder / f"{class_id}_{k}.jpg")
    return folder


def _study(work) -> str:
    spec = {"study_id": "own-labels", "title": "Own classes", "welcome": "Welcome.",
            "instructions": "Answer each question.", "model": "mynet", "methods": ["vital", "fourier"],
            "targets": TARGETS, "seeds": [0], "seed": 3,
            "sections": [{"type": "free_label", "targets": TARGETS, "methods": ["vital", "fourier"]},
                         {"type": "likert_word", "targets": TARGETS, "methods": ["vital", "fourier"]}]}
    path = work / "study" / "own-labels" / "study.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return "own-labels"


@pytest.mark.slow
def test_a_labels_file_model_runs_references_generation_metrics_and_forms(tmp_path, imagenet_sample):
    from tiny_models import tiny_cnn

    work = workflow_workdir(REPO, tmp_path)
    _images(work, imagenet_sample)
    (work / "labels.txt").write_text(LABELS, encoding="utf-8")
    torch.manual_seed(0)
    (work / "weights").mkdir()
    torch.save(tiny_cnn(width=8, num_classes=3).state_dict(), work / "weights" / "tiny.pth")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(run=RUN, device="cpu", images={"source": "folder", "path": "photos"})
    config["models"] = {"targets": ["mynet"], "held_out": None, "declare": {"mynet": {
        "source": "import", "factory": "tiny_models:tiny_cnn", "kwargs": {"width": 8, "num_classes": 3},
        "weights": "weights/tiny.pth", "input_size": 32, "classes": "labels.txt"}}}
    config["targets"] = {"classes": TARGETS}
    config["references"].update(class_count=2)
    config["generate"] = {"methods": ["vital", "fourier"], "seeds": [0], "batch_size": 2,
                          "vital": {"steps": 3, "warmup": 1}, "fourier": {"steps": 3}}
    config["metrics"] = {"fid": {"feature_model": "mynet", "kid_subset_size": 2, "kid_subsets": 2},
                         "clip": {"download": False}, "bootstrap": {"iterations": 0}, "tsne": {"perplexity": 2}}
    config["study"] = {"studies": [_study(work)]}
    (work / "config.yaml").write_text(yaml.safe_dump(config))

    run = work / "results" / RUN
    wanted = [f"results/{RUN}/03_metrics/metrics.csv", f"results/{RUN}/04_study/own-labels/forms/manifest.json"]
    result = subprocess.run([sys.executable, "-m", "snakemake", *wanted, "--cores", "2", "--configfile", "config.yaml"],
                            cwd=work, capture_output=True, text=True, env=_env(), timeout=1800)
    if result.returncode:
        logs = "".join(p.read_text() for p in (run / "logs").rglob("*.log")) if (run / "logs").is_dir() else ""
        pytest.fail(result.stderr[-3000:] + logs[-3000:])

    index = pd.read_csv(run / "00_index" / "images.csv")
    assert sorted(set(index["wnid"])) == ["cat", "dog", "sea_bird"]  # folder names of the file's ids
    references = json.loads((run / "01_references" / "mynet" / "sea_bird.json").read_text())
    assert references["target"] == {"kind": "class", "id": "sea_bird", "wnid": "sea_bird", "class_index": 2,
                                    "label": "Sea bird"}
    assert all(r["image_id"].startswith("sea_bird_") for r in references["references"])
    for method in ("vital", "fourier"):
        for target in TARGETS:
            assert (run / "02_fv" / "mynet" / method / target / "seed0.png").is_file()
        job = json.loads((run / "02_fv" / "mynet" / method / "_jobs" / "seed0-b000.json").read_text())
        assert "labels.txt" in job["inputs"], job["inputs"]  # the class list, hashed like the weights
    metrics = pd.read_csv(run / "03_metrics" / "metrics.csv")
    accuracy = metrics[metrics["metric"] == "accuracy_top1"]
    assert set(accuracy["method"]) == {"vital", "fourier"} and accuracy["value"].notna().all()
    predictions = pd.read_csv(run / "03_metrics" / "mynet" / "predictions.csv")
    assert dict(zip(predictions["target"], predictions["true_index"])) == {"sea_bird": 2, "cat": 0}
    assert set(predictions["top1_label"]) <= {"House cat", "Dog", "Sea bird"}
    clip = metrics[metrics["metric"] == "clip_top1"]
    assert not clip.empty  # unavailable offline (no CLIP weights), but planned over the file's classes
    manifest = json.loads((run / "04_study" / "own-labels" / "forms" / "manifest.json").read_text())
    shown = json.dumps(manifest)
    assert "Sea bird" in shown and "House cat" in shown  # the file's display names label the questions

    (work / "labels.txt").write_text(LABELS.replace("Sea bird", "Seabird"), encoding="utf-8")
    audit = subprocess.run([sys.executable, "-m", "vitalstudy.cli", "audit", f"results/{RUN}", "--configfile",
                            "config.yaml"], cwd=work, capture_output=True, text=True, env=_env(), timeout=1200)
    lines = audit.stdout.splitlines()
    assert audit.returncode == 1, audit.stdout[-3000:] + audit.stderr[-3000:]
    assert any("02_fv/mynet/vital/_jobs/seed0-b000.json: input labels.txt changed since the stage read it" in line
               for line in lines), lines
    assert any("03_metrics/mynet/_provenance/measure.json: input labels.txt changed" in line for line in lines), lines
    rerun = next(line for line in lines if "Snakemake would run:" in line)
    assert "generate x" in rerun and "metrics_measure x" in rerun, rerun
