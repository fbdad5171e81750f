"""FV loading enforces the stage-2 contract: each breach is an error naming the file and the field."""

import json

import numpy as np
import pytest
from PIL import Image

from metrics_helpers import MODEL, write_fv
from vitalstudy.metrics.images import FVKey, InvalidImageError, load_fv, planned_images
from vitalstudy.models import get_spec

KEY = FVKey("vital", "n07920052", 0)


def _image(mode="RGB", size=(224, 224)):
    channels = {"RGB": 3, "RGBA": 4}[mode]
    return Image.fromarray(np.full((size[1], size[0], channels), 128, np.uint8), mode)


def test_valid_fv_loads(tmp_path):
    write_fv(tmp_path, MODEL, "vital", "n07920052", 0, _image())
    fv = load_fv(tmp_path, MODEL, KEY)
    assert fv.image.mode == "RGB" and fv.image.size == (224, 224)
    assert fv.sidecar["target"]["id"] == "n07920052"


@pytest.mark.parametrize("image, overrides, field", [
    (_image("RGBA"), {}, "mode"),
    (_image(size=(200, 224)), {"resolution": 224}, "size"),
    (_image(), {"resolution": 256}, "size"),
    (_image(), {"seed": 3}, "seed"),
    (_image(), {"model": "resnet50"}, "model"),
    (_image(), {"method": "maco"}, "method"),
    (_image(), {"target": {"kind": "class", "id": "n02123159"}}, "target.id"),
    (_image(), {"target": "n07920052"}, "target"),
    (_image(), {"resolution": "224px"}, "resolution"),
    (_image(), {"compute": {"steps": 1}}, "compute.forward_passes"),
])
def test_contract_breaches_name_file_and_field(tmp_path, image, overrides, field):
    path = write_fv(tmp_path, MODEL, "vital", "n07920052", 0, image, overrides=overrides)
    with pytest.raises(InvalidImageError) as err:
        load_fv(tmp_path, MODEL, KEY)
    message = str(err.value)
    assert f": {field}: " in message
    assert str(path.parent) in message


def test_missing_sidecar_field_and_missing_files(tmp_path):
    path = write_fv(tmp_path, MODEL, "vital", "n07920052", 0, _image())
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    del meta["hyperparameters"]
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(InvalidImageError, match=r"seed0\.json: hyperparameters: missing"):
        load_fv(tmp_path, MODEL, KEY)
    sidecar.unlink()
    with pytest.raises(InvalidImageError, match=r"seed0\.json: sidecar: missing"):
        load_fv(tmp_path, MODEL, KEY)
    with pytest.raises(InvalidImageError, match=r"seed1\.png: file: missing"):
        load_fv(tmp_path, MODEL, FVKey("vital", "n07920052", 1))


def test_non_png_and_broken_json_are_rejected(tmp_path):
    path = write_fv(tmp_path, MODEL, "vital", "n07920052", 0, _image())
    _image().save(path, format="JPEG")
    with pytest.raises(InvalidImageError, match="format: is JPEG"):
        load_fv(tmp_path, MODEL, KEY)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(InvalidImageError, match="sidecar: not valid JSON"):
        load_fv(tmp_path, MODEL, KEY)


def test_planned_images_skip_methods_a_model_cannot_run(metrics_config):
    generate = {"methods": ["vital_lrp", "deepinversion"], "seeds": [0, 1], "target_kinds": {}}
    lite = planned_images(generate, get_spec(MODEL), ["n07920052"], ["head_c12"])
    assert {(k.method, k.target) for k in lite} == {("vital_lrp", "n07920052"), ("vital_lrp", "head_c12"),
                                                    ("deepinversion", "n07920052")}
    assert len(lite) == 3 * 2
    assert planned_images(generate, get_spec("vit_l_16"), ["n07920052"], ["head_c12"]) == []
