"""A user's own models through the tiny workflow, with nothing changed in the library: a torchvision
resnet18 (random weights saved to a local .pth), a timm model (a local checkpoint) and an
import-path factory (tests/models/tiny_models.py) each go through references -> VITAL and Fourier ->
metrics -> study forms. Then one weight file is overwritten with other weights: `vitalstudy audit`
reports it, and Snakemake would re-run the jobs that used it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["n07920052", "n02123159"]
RUN = "own-models"


def _weights(work: Path, seed: int) -> dict[str, dict]:
    """Random weights for each model, saved as the user would: {model: declaration}."""
    import timm
    import torchvision
    from tiny_models import tiny_cnn

    torch.manual_seed(seed)
    (work / "weights").mkdir(exist_ok=True)
    torch.save(torchvision.models.resnet18().state_dict(), work / "weights" / "resnet18.pth")
    torch.save(timm.create_model("resnet10t").state_dict(), work / "weights" / "resnet10t.pth")
    torch.save(tiny_cnn(width=8).state_dict(), work / "weights" / "tiny.pth")
    return {"resnet18": {"input_size": 64},  # any torchvision name; a declaration only to keep it small
            "r10t": {"source": "timm", "architecture": "resnet10t", "weights": "weights/resnet10t.pth", "input_size": 64},
            "mynet": {"source": "import", "factory": "tiny_models:tiny_cnn", "kwargs": {"width": 8},
                      "weights": "weights/tiny.pth", "input_size": 32}}


def _study(work: Path, model: str) -> str:
    study_id = f"own-{model}"
    spec = {"study_id": study_id, "title": "Own model", "welcome": "Welcome.", "instructions": "Answer each question.",
            "model": model, "methods": ["vital", "fourier"], "targets": CLASSES, "seeds": [0], "seed": 3,
            "sections": [{"type": "free_label", "targets": CLASSES, "methods": ["vital", "fourier"]},
                         {"type": "likert_word", "targets": CLASSES, "methods": ["vital", "fourier"]}]}
    path = work / "study" / study_id / "study.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return study_id


def _env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO / 'tests' / 'models'}", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_torchvision_timm_and_import_models_run_the_whole_workflow(tmp_path):
    pytest.importorskip("timm")
    work = tmp_path / "work"
    work.mkdir()
    for item in ("Snakefile", "workflow"):
        (work / item).symlink_to(REPO / item)
    declare = _weights(work, seed=0)
    models = list(declare)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(run=RUN, device="cpu")
    config["models"] = {"targets": models, "held_out": None, "weights": {"resnet18": "weights/resnet18.pth"},
                        "declare": declare}
    config["targets"] = {"classes": CLASSES}
    config["references"].update(class_count=2)
    config["generate"] = {"methods": ["vital", "fourier"], "seeds": [0], "batch_size": 2,
                          "vital": {"steps": 3, "warmup": 1}, "fourier": {"steps": 3}}
    config["metrics"] = {"fid": {"feature_model": "mynet", "kid_subset_size": 2, "kid_subsets": 2},
                         "clip": {"download": False}, "bootstrap": {"iterations": 0}, "tsne": {"perplexity": 2}}
    config["study"] = {"studies": [_study(work, m) for m in models]}
    (work / "config.yaml").write_text(yaml.safe_dump(config))

    # Up to the study forms: stages 5-6 need participants' answers, which a new study does not have yet.
    wanted = [f"results/{RUN}/03_metrics/metrics.csv", *(f"results/{RUN}/04_study/own-{m}/forms/manifest.json" for m in models)]
    result = subprocess.run([sys.executable, "-m", "snakemake", *wanted, "--cores", "2", "--configfile", "config.yaml"],
                            cwd=work, capture_output=True, text=True, env=_env(), timeout=1800)
    run = work / "results" / RUN
    if result.returncode:
        logs = "".join(p.read_text() for p in (run / "logs").rglob("*.log")) if (run / "logs").is_dir() else ""
        pytest.fail(result.stderr[-3000:] + logs[-3000:])

    sizes = {"resnet18": 64, "r10t": 64, "mynet": 32}
    metrics = pd.read_csv(run / "03_metrics" / "metrics.csv")
    for model in models:
        references = json.loads((run / "01_references" / model / "n07920052.json").read_text())
        assert len(references["references"]) == 2
        for method in ("vital", "fourier"):
            for wnid in CLASSES:
                assert Image.open(run / "02_fv" / model / method / wnid / "seed0.png").size == (sizes[model],) * 2
            job = json.loads((run / "02_fv" / model / method / "_jobs" / "seed0-b000.json").read_text())
            assert any(p.startswith("weights/") for p in job["inputs"]), job["inputs"]  # the weight file, hashed
        assert set(metrics[metrics["model"] == model]["method"]) >= {"vital", "fourier"}
        manifest = json.loads((run / "04_study" / f"own-{model}" / "forms" / "manifest.json").read_text())
        assert manifest["questions"]
        assert (run / "04_study" / f"own-{model}" / "_provenance" / "forms.json").is_file()

    _weights(work, seed=1)  # every weight file overwritten with other weights, same names
    audit = subprocess.run([sys.executable, "-m", "vitalstudy.cli", "audit", f"results/{RUN}", "--configfile",
                            "config.yaml"], cwd=work, capture_output=True, text=True, env=_env(), timeout=1200)
    lines = audit.stdout.splitlines()
    assert audit.returncode == 1, audit.stdout[-3000:] + audit.stderr[-3000:]
    assert any("02_fv/resnet18/vital/_jobs/seed0-b000.json: input weights/resnet18.pth changed since the stage "
               "read it" in line for line in lines), lines
    assert any("03_metrics/r10t/_provenance/measure.json: input weights/resnet10t.pth changed" in line for line in lines)
    rerun = next(line for line in lines if "Snakemake would run:" in line)
    assert "generate x" in rerun and "metrics_measure x" in rerun, rerun
