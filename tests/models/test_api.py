"""`vitalstudy.visualize` gives the same bytes as the workflow's generation job for the same
settings: VITAL on a model named like in a config, Fourier on an nn.Module passed as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_models import tiny_cnn

import vitalstudy
from vitalstudy.cli import main
from vitalstudy.config import section_with_defaults
from vitalstudy.errors import ConfigError
from vitalstudy.fv.settings import job_settings
from vitalstudy.io import sha256_file, write_json


def _photos(folder: Path) -> list[Path]:
    skimage_data = pytest.importorskip("skimage.data")
    paths = []
    for name in ("coffee", "chelsea", "rocket"):
        path = folder / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(getattr(skimage_data, name)()).convert("RGB").save(path, quality=90)
        paths.append(path)
    return paths


def _job(run: Path, model: str, method: str, target: str, generate: dict, models: dict | None = None) -> dict:
    stage = {"seed": 0, "device": "cpu", "models": models or {}, "concepts": [],
             "generate": job_settings(section_with_defaults("generate", {"methods": [method], **generate}), method)}
    marker = run / "02_fv" / model / method / "_jobs" / "seed0-b000.json"
    assert main(["generate", "--stage-config", json.dumps(stage), "--run-dir", str(run), "--model", model,
                 "--method", method, "--seed", "0", "--targets", target, "--marker", str(marker)]) == 0
    return {kind: run / "02_fv" / model / method / target / f"seed0{suffix}"
            for kind, suffix in (("png", ".png"), ("alpha", "_alpha.png"), ("json", ".json"))}


def _same_files(workflow: dict, api_prefix: Path) -> None:
    assert workflow["png"].read_bytes() == Path(f"{api_prefix}.png").read_bytes()
    assert workflow["alpha"].read_bytes() == Path(f"{api_prefix}_alpha.png").read_bytes()
    ours, theirs = (json.loads(p.read_text()) for p in (Path(f"{api_prefix}.json"), workflow["json"]))
    assert ours["fingerprint"] == theirs["fingerprint"] and ours["hyperparameters"] == theirs["hyperparameters"]


def test_vital_api_matches_the_workflow_job(tmp_path):
    photos = _photos(tmp_path / "photos")
    run, model, target = tmp_path / "run", "efficientnet_lite0", "n07920052"
    references = [{"image_id": p.stem, "path": str(p), "sha256": sha256_file(p),
                   "view": {"kind": "original", "crop_box": None, "flip": False}} for p in photos]
    write_json(run / "01_references" / model / f"{target}.json", {"references": references})
    vital = {"steps": 3, "warmup": 1}
    workflow = _job(run, model, "vital", target, {"vital": vital, "batch_size": 1})

    fv = vitalstudy.visualize(model, target, references=photos, steps=3, settings={"warmup": 1}, device="cpu")
    fv.save(tmp_path / "api")
    _same_files(workflow, tmp_path / "api")
    assert fv.image.size == (224, 224) and fv.alpha.mode == "L" and fv.record["method"] == "vital"
    by_index = vitalstudy.visualize(model, 967, references=photos, steps=3, settings={"warmup": 1})
    assert by_index.image.tobytes() == fv.image.tobytes()  # 967 is the espresso class


def test_baseline_on_an_nn_module_matches_the_declared_model(tmp_path):
    torch.manual_seed(0)
    module = tiny_cnn(width=4)
    weights = tmp_path / "tiny.pth"
    torch.save(module.state_dict(), weights)
    from vitalstudy.config import resolve_model_declarations

    models = resolve_model_declarations({"declare": {"tiny": {
        "source": "import", "factory": "tiny_models:tiny_cnn", "kwargs": {"width": 4}, "input_size": 32,
        "weights": str(weights)}}})
    workflow = _job(tmp_path / "run", "tiny", "fourier", "n02123159", {"fourier": {"steps": 4}, "batch_size": 1}, models)

    fv = vitalstudy.visualize(module, "n02123159", method="fourier", steps=4, name="tiny", declaration={"input_size": 32})
    fv.save(tmp_path / "api")
    _same_files(workflow, tmp_path / "api")
    assert fv.image.size == (32, 32)


def test_api_says_what_is_missing():
    with pytest.raises(ConfigError, match="VITAL needs reference images of n07920052"):
        vitalstudy.visualize(tiny_cnn(width=4), "n07920052", declaration={"input_size": 32}, steps=1)
    with pytest.raises(ConfigError, match="generate.fourier.stepz: unknown key"):
        vitalstudy.visualize(tiny_cnn(width=4), "n07920052", method="fourier", settings={"stepz": 1})
