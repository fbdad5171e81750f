import numpy as np
import pytest
from PIL import Image

from vitalstudy.data.sources import build_index
from vitalstudy.models import get_spec, load_model
from vitalstudy.references.select import (apply_view, score_patches, select_class_references,
                                          select_neuron_references)
from vitalstudy.references.targets import parse_target


@pytest.fixture()
def photo_folder(tmp_path):
    """A folder source: 3 real bundled photos under <wnid>_ names, two of one class, plus a corrupt file."""
    index, _ = build_index({"source": "bundled"}, seed=0)
    folder = tmp_path / "images"
    folder.mkdir()
    rows = index.set_index("image_id")
    for name, image_id in [("n07920052_a", "skimage_coffee"), ("n07920052_b", "skimage_chelsea"),
                           ("n07920052_c", "sklearn_china"), ("n03773504_a", "skimage_rocket")]:
        Image.open(rows.loc[image_id, "path"]).convert("RGB").save(folder / f"{name}.JPEG")
    (folder / "n03773504_broken.JPEG").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return folder


def test_index_skips_corrupt_files_with_reason_and_splits_pools(photo_folder):
    index, skipped = build_index({"source": "folder", "path": str(photo_folder), "metric_fraction": 0.34}, seed=0)
    assert len(index) == 4 and list(skipped["path"]) == [str(photo_folder / "n03773504_broken.JPEG")]
    assert "unreadable image" in skipped["reason"][0]
    espresso = index[index.wnid == "n07920052"]["pool"].value_counts().to_dict()
    assert espresso == {"reference": 2, "metric": 1}  # disjoint pools when a class has several images
    assert index[index.wnid == "n03773504"]["pool"].tolist() == ["both"]  # a single image cannot be split


def test_class_references_are_seeded_and_fill_with_recorded_views(photo_folder):
    index, _ = build_index({"source": "folder", "path": str(photo_folder)}, seed=0)
    first = select_class_references(index, "n07920052", count=5, seed=3, augment={"min_area": 0.4})
    again = select_class_references(index, "n07920052", count=5, seed=3, augment={"min_area": 0.4})
    other = select_class_references(index, "n07920052", count=5, seed=4, augment={"min_area": 0.4})
    assert first.references == again.references
    assert first.references != other.references
    kinds = [r["view"]["kind"] for r in first.references]
    assert kinds.count("original") == first.how["distinct_images"] and kinds.count("augmented") == 5 - kinds.count("original")
    assert all(r["image_id"] in set(index[index.pool != "metric"].image_id) for r in first.references)
    view = next(r for r in first.references if r["view"]["kind"] == "augmented")
    x0, y0, x1, y1 = view["view"]["crop_box"]
    source = Image.open(view["path"])
    assert 0 <= x0 < x1 <= source.width and 0 <= y0 < y1 <= source.height
    assert apply_view(source, view["view"]).size == (x1 - x0, y1 - y0)


def test_neuron_references_are_top_k_distinct_images_and_deterministic():
    index, _ = build_index({"source": "bundled"}, seed=0)
    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    import torch

    scores = score_patches(model, spec, index, "blocks.10", patch=112, stride=112, candidates=6, seed=0,
                           device=torch.device("cpu"))
    again = score_patches(model, spec, index, "blocks.10", patch=112, stride=112, candidates=6, seed=0,
                          device=torch.device("cpu"))
    assert np.array_equal(scores["scores"], again["scores"]) and scores["scores"].shape == (6, 112)
    selection = select_neuron_references(index, scores, channel=7, count=4)
    ids = [r["image_id"] for r in selection.references]
    assert len(ids) == 4 == len(set(ids))
    ranked = [r["score"] for r in selection.references]
    assert ranked == sorted(ranked, reverse=True)
    best = scores["scores"][:, 7].max()
    assert ranked[0] == pytest.approx(float(best))
    assert all(len(r["patch_box"]) == 4 for r in selection.references)


def test_target_ids_parse():
    assert parse_target("n07920052").as_dict()["label"] == "espresso"
    neuron = parse_target("layer4.2_c1935")
    assert (neuron.kind, neuron.layer, neuron.channel) == ("neuron", "layer4.2", 1935)


def _select_cli(tmp_path, run: str, targets: list[str], *extra: str) -> int:
    import json

    from vitalstudy.cli import main

    index, skipped = build_index({"source": "bundled"}, seed=0)
    index_file = tmp_path / "images.csv"
    index.to_csv(index_file, index=False)
    stage = {"seed": 0, "device": "cpu", "references": {"class_count": 3, "montage_columns": 4}, "models": {}}
    return main(["references", "select", "--stage-config", json.dumps(stage), "--index", str(index_file),
                 "--model", "efficientnet_lite0", "--targets", *targets, *extra, "--run-dir", str(tmp_path / run),
                 "--record", str(tmp_path / run / "record.json")])


def test_select_command_writes_each_target_of_a_batch_as_if_selected_alone(tmp_path):
    """One job, several targets: each target's JSON and montage where the layout puts them, the
    same bytes as a job of that target alone, and a record of every output."""
    import json

    from vitalstudy.io import sha256_file
    from vitalstudy.layout import RunLayout

    classes = ["n07920052", "n02123159", "n03773504"]
    assert _select_cli(tmp_path, "batch", classes) == 0
    assert _select_cli(tmp_path, "alone", classes[1:2]) == 0
    batch, alone = RunLayout(tmp_path / "batch").references, RunLayout(tmp_path / "alone").references
    record = json.loads((tmp_path / "batch" / "record.json").read_text())
    assert record["targets"] == classes
    for target in classes:
        for path in (batch.json("efficientnet_lite0", target), batch.montage("efficientnet_lite0", target)):
            assert record["outputs"][str(path)] == sha256_file(path)
        provenance = json.loads(batch.provenance("efficientnet_lite0", target).read_text())
        assert provenance["parameters"]["target"] == target
    for file in ("json", "montage"):
        assert sha256_file(getattr(batch, file)("efficientnet_lite0", classes[1])) == \
            sha256_file(getattr(alone, file)("efficientnet_lite0", classes[1]))


def test_select_command_names_the_missing_patch_scores(tmp_path):
    with pytest.raises(SystemExit, match="no --patch-scores for layer 'head'"):
        _select_cli(tmp_path, "r", ["n07920052", "head_c3"])
    with pytest.raises(SystemExit, match="--patch-scores takes LAYER=NPZ, got 'head.npz'"):
        _select_cli(tmp_path, "r", ["head_c3"], "--patch-scores", "head.npz")
    assert not (tmp_path / "r" / "record.json").exists()  # no record: the workflow re-runs the job
