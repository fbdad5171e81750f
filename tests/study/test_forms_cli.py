"""`vitalstudy forms` end to end, and the model-based ranking of 2AFC query images."""

import json

import pytest
from forms_fixtures import full_spec, make_run, write_spec

from vitalstudy.cli import main
from vitalstudy.study.forms import study_inputs


def test_forms_command_writes_the_bundle(tmp_path, capsys):
    spec = full_spec()
    spec["sections"] = [s for s in spec["sections"] if s["type"] != "two_afc"]  # no model needed
    run = make_run(tmp_path)
    spec_path = write_spec(tmp_path, spec)
    assert main(["forms", "--spec", str(spec_path), "--run", str(run)]) == 0
    manifest = json.loads((run / "04_study/teststudy/forms/manifest.json").read_text())
    assert f"manifest {manifest['manifest_version']}" in capsys.readouterr().out
    assert (run / "04_study/teststudy/private/answer_key.json").is_file()
    assert (run / "04_study/teststudy/private/blinding.key").stat().st_mode & 0o077 == 0


def test_forms_command_reports_missing_files(tmp_path, capsys):
    run = make_run(tmp_path, methods=["vital"])
    spec_path = write_spec(tmp_path, full_spec())
    assert main(["forms", "--spec", str(spec_path), "--run", str(run)]) == 1
    err = capsys.readouterr().err
    assert str(spec_path) in err and "02_fv/tinynet/maco/" in err


def test_study_inputs_lists_what_the_dag_needs(tmp_path):
    run = tmp_path / "results" / "x"
    inputs = study_inputs(write_spec(tmp_path, full_spec()), run)
    assert str(run / "00_index/images.csv") in inputs
    assert str(run / "01_references/tinynet/layer4.2_c1935.json") in inputs
    assert str(run / "02_fv/tinynet/fourier/layer4.2_c1935/seed1.png") in inputs  # 2AFC shows every seed
    assert not any("deepinversion/layer4.2" in p for p in inputs)  # not asked for on inner neurons


@pytest.mark.slow
def test_model_scorer_ranks_the_espresso_photo_first():
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    from vitalstudy.study.forms_queries import model_scorer

    photos = [Image.fromarray(getattr(skimage_data, n)()).convert("RGB") for n in ("chelsea", "coffee", "rocket")]
    targets = {"n07920052": {"kind": "class", "class_index": 967},
               "head_c12": {"kind": "neuron", "layer": "head", "channel": 12}}
    scores = model_scorer("efficientnet_lite0")(targets)(photos)
    assert max(range(3), key=scores["n07920052"].__getitem__) == 1
    assert len(scores["head_c12"]) == 3 and len(set(scores["head_c12"])) == 3
