"""Generation: same seed -> same bytes on CPU; a killed job resumes without redoing finished
targets; a target's image does not depend on which targets share its batch."""

import json
import shutil
import time

import pytest

from tests.fv.conftest import generate_cli

TARGETS = ["n07920052", "n02123159"]


def _png(run, target, method="vital", seed=0):
    return run / "02_fv" / "efficientnet_lite0" / method / target / f"seed{seed}.png"


def _copy_refs(src, dst):
    shutil.copytree(src / "01_references", dst / "01_references")
    return dst


@pytest.fixture(scope="module")
def pair_run(tiny_run, tmp_path_factory):
    """Both targets generated in one batch of two."""
    run = _copy_refs(tiny_run, tmp_path_factory.mktemp("pair"))
    assert generate_cli(run, TARGETS, batch_size=2).wait(timeout=300) == 0
    return run


def test_same_seed_same_bytes_and_contract(pair_run, tiny_run, tmp_path):
    first = pair_run
    second = _copy_refs(tiny_run, tmp_path / "b")
    assert generate_cli(second, TARGETS, batch_size=2).wait(timeout=300) == 0
    for target in TARGETS:
        assert _png(first, target).read_bytes() == _png(second, target).read_bytes()
    sidecar = json.loads(_png(first, "n07920052").with_suffix(".json").read_text())
    assert sidecar["target"]["label"] == "espresso" and sidecar["seed"] == 0 and sidecar["resolution"] == 224
    assert sidecar["compute"]["steps"] == 6 and sidecar["compute"]["forward_passes"] == 6
    assert sidecar["hyperparameters"]["loop"]["betas"] == [0.5, 0.9]
    assert [r["image_id"] for r in sidecar["references"]]
    from PIL import Image

    image = Image.open(_png(first, "n07920052"))
    assert image.mode == "RGB" and image.size == (224, 224)
    assert Image.open(_png(first, "n07920052").with_name("seed0_alpha.png")).mode == "L"
    marker = json.loads((first / "marker.json").read_text())
    assert str(_png(first, "n07920052")) in marker["outputs"] and marker["inputs"]


def test_batch_composition_and_seed(pair_run, tiny_run, tmp_path):
    """A target's image is the same whoever shares its batch; another seed gives another image."""
    other = _copy_refs(tiny_run, tmp_path / "other")
    assert generate_cli(other, ["n07920052", "n11939491"], batch_size=2).wait(timeout=300) == 0
    assert _png(pair_run, "n07920052").read_bytes() == _png(other, "n07920052").read_bytes()
    assert generate_cli(other, ["n07920052"], seed=1).wait(timeout=300) == 0
    assert _png(other, "n07920052", seed=1).read_bytes() != _png(pair_run, "n07920052").read_bytes()


def test_killed_job_resumes_without_redoing_finished_targets(tiny_run, tmp_path):
    run = _copy_refs(tiny_run, tmp_path / "killed")
    reference = _copy_refs(tiny_run, tmp_path / "uninterrupted")
    steps = 16
    process = generate_cli(run, TARGETS, steps=steps, batch_size=1)
    work = run / "02_fv" / "efficientnet_lite0" / "vital" / "_work"
    deadline = time.time() + 300
    # Kill once the first target is written and the second has a checkpoint (one saved after the
    # first target's sidecar: the first batch's own checkpoint lingers until its outputs are written).
    sidecar0 = _png(run, TARGETS[0]).with_suffix(".json")

    def second_checkpoint() -> bool:
        if not sidecar0.exists() or not work.is_dir():
            return False
        written = sidecar0.stat().st_mtime_ns
        for checkpoint in work.glob("seed*.pt"):  # not a save in progress (atomic_path's .seed*.pt temp file)
            try:
                if checkpoint.stat().st_mtime_ns > written:
                    return True
            except FileNotFoundError:  # the first batch's checkpoint, cleared meanwhile
                pass
        return False

    while time.time() < deadline and not second_checkpoint():
        time.sleep(0.2)
    process.kill()
    process.wait()
    assert _png(run, TARGETS[0]).exists() and not _png(run, TARGETS[1]).exists()
    first_written = _png(run, TARGETS[0]).stat().st_mtime_ns
    rerun = generate_cli(run, TARGETS, steps=steps, batch_size=1)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    assert "1 of 2 targets already done, skipped" in output
    assert _png(run, TARGETS[0]).stat().st_mtime_ns == first_written
    sidecar = json.loads(_png(run, TARGETS[1]).with_suffix(".json").read_text())
    assert sidecar["compute"]["resumed_at_step"] > 0
    assert generate_cli(reference, TARGETS, steps=steps, batch_size=1).wait(timeout=300) == 0
    for target in TARGETS:  # resuming from a checkpoint reproduces the uninterrupted run exactly
        assert _png(run, target).read_bytes() == _png(reference, target).read_bytes()


def test_changed_settings_regenerate(pair_run, tiny_run, tmp_path):
    run = _copy_refs(tiny_run, tmp_path / "changed")
    shutil.copytree(pair_run / "02_fv", run / "02_fv")
    before = _png(run, TARGETS[0]).read_bytes()
    process = generate_cli(run, TARGETS[:1], steps=7)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0 and "already done" not in output
    assert _png(run, TARGETS[0]).read_bytes() != before


def test_concept_direction_target_end_to_end(tmp_path):
    """A concept (a vector at a layer) gets references by cosine similarity and a VITAL-LRP image
    whose relevance starts from the direction (App. B.3)."""
    import numpy as np
    import torch

    from vitalstudy.data.sources import build_index
    from vitalstudy.fv.generate import run_job
    from vitalstudy.fv.settings import default_method_config
    from vitalstudy.io import write_json
    from vitalstudy.models import get_spec, load_model
    from vitalstudy.references.select import select_concept_references
    from vitalstudy.targets import parse_target

    direction = tmp_path / "stripes.npy"
    np.save(direction, np.random.default_rng(0).random(1280).astype(np.float32))
    concepts = [{"name": "stripes", "layer": "head", "direction": str(direction)}]
    target = parse_target("concept-stripes", concepts)
    index, _ = build_index({"source": "bundled"}, seed=0)
    selection = select_concept_references(load_model("efficientnet_lite0"), get_spec("efficientnet_lite0"), index,
                                          "head", target.direction(), 2, 10, 0, torch.device("cpu"))
    scores = [r["score"] for r in selection.references]
    assert len({r["image_id"] for r in selection.references}) == 2 and scores == sorted(scores, reverse=True)
    from vitalstudy.io import sha256_file

    for ref in selection.references:
        ref["sha256"] = sha256_file(ref["path"])
    write_json(tmp_path / "01_references" / "efficientnet_lite0" / "concept-stripes.json",
               {"target": target.as_dict(), "references": selection.references})
    config = default_method_config("vital_lrp", steps=2, lr=1.0, betas=[0.5, 0.9], warmup=0, jitter=2)
    result = run_job(tmp_path, "efficientnet_lite0", "vital_lrp", ["concept-stripes"], 0, config,
                      torch.device("cpu"), batch_size=1, concepts=concepts, log=lambda *_: None)
    sidecar = json.loads(open(result.records[0]["json"]["path"]).read())
    assert sidecar["target"]["kind"] == "concept" and sidecar["hyperparameters"]["relevance_start"] == "direction"
    from vitalstudy.errors import VitalStudyError

    with pytest.raises(VitalStudyError, match="activate_target needs a class or channel target"):
        run_job(tmp_path, "efficientnet_lite0", "vital_lrp", ["concept-stripes"], 0,
                {**config, "dead_relevance": "activate_target"},
                torch.device("cpu"), batch_size=1, concepts=concepts, log=lambda *_: None)
