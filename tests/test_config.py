import copy
from pathlib import Path

import pytest
import yaml

from vitalstudy import config as cfg
from vitalstudy.errors import ConfigError

DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())


def _with(path: str, value):
    data = copy.deepcopy(DEMO)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


def test_shipped_configs_validate(repo, monkeypatch, tmp_path):
    assert cfg.load([repo / "config" / "config.yaml"])["references"]["patch"] == {"size": 64, "stride": 64}
    resolved = cfg.load([repo / "config" / "demo-full.yaml"])
    assert resolved["references"]["patch"] == {"size": 64, "stride": 32}  # schema defaults filled in
    monkeypatch.setenv("VITALSTUDY_SAMPLE_DIR", str(tmp_path))
    assert cfg.load([repo / "config" / "sample.yaml"])["images"]["path"] == str(tmp_path)


@pytest.mark.parametrize("key,value,expected", [
    ("models.targets", ["resnet51"], "models.targets[0]: unknown model 'resnet51'"),
    ("seed", "zero", "seed: 'zero' is not of type 'integer'"),
    ("images.source", "flickr", "images.source: 'flickr' is not one of"),
    ("images.path", None, None),  # bundled needs no path: valid
    ("references.class_count", 0, "references.class_count: 0 is less than the minimum of 1"),
    ("targets.classes", ["n99999999"], "targets.classes[0]: 'n99999999' is not an ImageNet-1k WordNet id"),
    ("targets.classes", ["espresso"], "targets.classes"),
    ("referencs", {}, "referencs: unknown key"),
    ("models.weights", {"resnet50": "/no/such/file.pth"}, "models.weights.resnet50: weight file /no/such/file.pth does not exist"),
    ("targets.neurons", [{"layer": "nope", "channels": [1]}], "targets.neurons[0].layer: efficientnet_lite0 has no layer 'nope'"),
    ("generate.target_kinds", {"vital": ["neuron"], "maco": ["class"]}, None),
    ("generate.target_kinds", {"vitl": ["class"]}, "generate.target_kinds.vitl: unknown method 'vitl'"),
    ("generate.target_kinds", {"fourier_lucid": ["class"]}, None),  # not run here: an overlay may add it
    ("generate.target_kinds", {"deepinversion": ["class", "neuron"]},
     "generate.target_kinds.deepinversion[1]: deepinversion cannot run neuron targets (DeepInversion optimises class"),
    ("generate.target_kinds", {"vital": []}, "generate.target_kinds.vital: [] should be non-empty"),
    ("generate.target_kinds", {"vital": ["pixel"]}, "generate.target_kinds.vital.0: 'pixel' is not one of"),
    ("generate.vital_lrp", {"attribution": "lrp"}, "generate.vital_lrp.attribution: unknown key (allowed here: steps, warmup)"),
])
def test_bad_config_names_key_and_problem(key, value, expected):
    if expected is None:
        cfg.validate(_with(key, value))
        return
    with pytest.raises(ConfigError) as info:
        cfg.validate(_with(key, value))
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_missing_folder_path_is_named():
    bad = _with("images", {"source": "folder", "path": "/no/such/dir"})
    with pytest.raises(ConfigError, match=r"images.path: directory /no/such/dir does not exist"):
        cfg.validate(bad)
    assert cfg.validate(bad, check_paths=False)["images"]["path"] == "/no/such/dir"  # dry runs


def test_environment_variables_expand(monkeypatch):
    monkeypatch.delenv("NOPE_VAR", raising=False)
    assert cfg.expand_env("${NOPE_VAR:-/x}", "k") == "/x"
    with pytest.raises(ConfigError, match="k: environment variable NOPE_VAR is not set"):
        cfg.expand_env("${NOPE_VAR}", "k")


def test_cli_reports_one_line(tmp_path, capsys):
    from vitalstudy.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with("models.targets", ["resnet51"])))
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vitalstudy check-config: error: models.targets[0]") and "\n" not in err
