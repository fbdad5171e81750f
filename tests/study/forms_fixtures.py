"""A tiny run directory and a study spec covering every section type, built inside the tests;
and the headless Chromium the browser tests share.

The FV PNGs deliberately carry text chunks naming their method and target, so the blinding tests
can check that re-encoding strips them.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, PngImagePlugin

MODEL = "tinynet"
METHODS = ["vital", "fourier", "maco", "deepinversion"]
CLASSES = {"n07920052": ("espresso", 967), "n02123159": ("tiger cat", 282), "n11939491": ("daisy", 985)}
NEURONS = ["layer4.2_c1935", "layer4.2_c485"]
N_NATURAL = 12
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _png(path: Path, color: tuple[int, int, int], text: dict | None = None, size=(64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    Image.new("RGB", size, color).save(path, pnginfo=info)


def target_object(target: str) -> dict:
    if target.startswith("n") and "_c" not in target:
        label, index = CLASSES.get(target, (None, 0))
        return {"kind": "class", "id": target, "wnid": target, "class_index": index, "label": label}
    layer, _, channel = target.rpartition("_c")
    return {"kind": "neuron", "id": target, "layer": layer, "channel": int(channel)}


def make_run(root: Path, methods=METHODS, targets=None, model=MODEL, seeds=(0, 1), n_natural=N_NATURAL) -> Path:
    """results/<run>/ with 00_index, 01_references and 02_fv for every (method, target, seed)."""
    run = root / "results" / "test"
    naturals = []
    for i in range(n_natural):
        path = root / "images" / f"img{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (80, 60), (i * 20, 100, 255 - i * 20)).save(path, quality=90)
        naturals.append({"image_id": f"img{i:02d}", "path": str(path), "wnid": "n07920052",
                         "class_index": 967, "source": "folder", "split": "none",
                         "pool": "reference" if i < 3 else "metric"})
    (run / "00_index").mkdir(parents=True)
    with (run / "00_index" / "images.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(naturals[0]))
        writer.writeheader()
        writer.writerows(naturals)
    for t_i, target in enumerate(targets or [*CLASSES, *NEURONS]):
        refs = [{"image_id": r["image_id"], "path": r["path"], "sha256": "0" * 64,
                 "view": {"kind": "original", "crop_box": [0, 0, 40, 40], "flip": i % 2 == 1}}
                for i, r in enumerate(naturals[:3])]
        ref_file = run / "01_references" / model / f"{target}.json"
        ref_file.parent.mkdir(parents=True, exist_ok=True)
        ref_file.write_text(json.dumps({"target": target_object(target), "model": model, "references": refs,
                                        "how": "test", "disjoint_from_metrics": True}))
        for m_i, method in enumerate(methods):
            for seed in seeds:
                png = run / "02_fv" / model / method / target / f"seed{seed}.png"
                _png(png, (40 * m_i, 30 * t_i, 10 * seed), {"method": method, "target": target, "Comment": method})
                png.with_suffix(".json").write_text(json.dumps(
                    {"model": model, "method": method, "target": target_object(target), "seed": seed}))
    return run


def full_spec(**overrides) -> dict:
    spec = {
        "study_id": "teststudy",
        "title": "Picture study",
        "welcome": "Welcome to the study.",
        "instructions": "Answer every question.",
        "model": MODEL,
        "methods": METHODS,
        "targets": [*CLASSES, *NEURONS],
        "seeds": [0, 1],
        "seed": 7,
        "exclusions": {"min_catch_accuracy": 0.5, "completion_seconds": {"min": 10, "max": 3600},
                       "straightlining": {"sections": ["likert_word"], "max_identical_fraction": 1.0}},
        "sections": [
            {"type": "free_label", "targets": list(CLASSES), "methods": ["vital", "deepinversion", "maco"]},
            {"type": "likert_word", "targets": ["n07920052", "n02123159"]},
            {"type": "likert_references", "targets": NEURONS, "methods": ["vital", "maco", "fourier"], "references": 2},
            {"type": "two_afc", "targets": ["n11939491", NEURONS[0]], "methods": ["vital", "fourier", "maco"],
             "catch_trials": 1, "query_pool": 2, "references": 3},
            {"type": "demographics"},
        ],
    }
    spec.update(overrides)
    return spec


def write_spec(root: Path, spec: dict, directory: str = "teststudy") -> Path:
    path = root / "study" / directory / "study.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def brightness_scorer(targets: dict[str, dict]):
    """A stand-in for the model: mean of the red channel for every unit, so the ranking is known."""
    def score(images):
        return {t: [float(np.asarray(im)[..., 0].mean()) for im in images] for t in targets}
    return score


def build(tmp_path: Path, **overrides):
    """Run dir + spec + built bundle; returns (spec path, study dir, manifest)."""
    from vitalstudy.study.forms import write_forms
    from vitalstudy.study.spec import load_spec

    run = make_run(tmp_path)
    spec_path = write_spec(tmp_path, full_spec(**overrides))
    study_dir = run / "04_study" / "teststudy"
    manifest = write_forms(load_spec(spec_path), run, study_dir, brightness_scorer)
    return spec_path, study_dir, manifest


def png_chunks(data: bytes) -> list[str]:
    """The chunk types of a PNG file, in order."""
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append(data[pos + 4 : pos + 8].decode())
        pos += 12 + length
    return chunks


def answer_all(manifest: dict, subset: str | None) -> dict:
    """A complete, valid answers object for one subset."""
    answers = {}
    for q in manifest["questions"]:
        if q["subset"] not in (None, subset):
            continue
        kind = q["fields"][0]["kind"]
        if q["type"] == "two_afc":
            answers[q["question_id"]] = {"choice": "A", "confidence": 2}
        elif kind == "likert":
            answers[q["question_id"]] = 3
        elif kind == "text":
            answers[q["question_id"]] = "a cup"
        else:
            answers[q["question_id"]] = q["fields"][0]["options"][0]
    return answers


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: run scripts/ensure-browser.sh (installs Debian's chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
