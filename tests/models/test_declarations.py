"""Models from config: a torchvision name, a timm model and an import-path factory are declared,
inferred and checked against their real module names; a wrong layer is one line naming the key and
the nearest names; `vitalstudy layers` marks the defaults."""

from __future__ import annotations

import pytest
import torch
import yaml

from vitalstudy.cli import main
from vitalstudy.config import load
from vitalstudy.errors import ConfigError, MissingAssetError
from vitalstudy.models import get_spec, load_model
from vitalstudy.models.assets import required_assets
from vitalstudy.provenance import Provenance

IMPORT_MODEL = {"source": "import", "factory": "tiny_models:tiny_cnn", "kwargs": {"width": 4}, "input_size": 32}


def _config(tmp_path, models: dict, **extra) -> list[str]:
    path = tmp_path / "models.yaml"
    # the demo's inner neurons and accentuations are Lite0's: none unless the test names some for its model
    extra["targets"] = {"neurons": [], "accentuations": [], **extra.get("targets", {})}
    path.write_text(yaml.safe_dump({"models": {"held_out": None, **models}, **extra}))
    return ["config/config.yaml", str(path)]


def test_torchvision_name_needs_no_declaration(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    weights = tmp_path / "r18.pth"
    import torchvision

    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), weights)
    config = load(_config(tmp_path, {"targets": ["resnet18"], "weights": {"resnet18": str(weights)}},
                          metrics={"fid": {"feature_model": "resnet18"}}))
    decl = config["models"]["declare"]["resnet18"]
    assert list(decl["class_layers"]) == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    assert decl["neuron_layer"] == "layer4" and list(decl["neuron_layers"]) == ["conv1", "layer1", "layer2", "layer3"]
    assert decl["classifier"] == "fc" and decl["relevance"]["canonizer"] == "resnet"
    assert (decl["input_size"], decl["resize_size"]) == (224, 256)  # torchvision's weights metadata
    spec = get_spec("resnet18")
    assert spec.class_layer_names == list(decl["class_layers"])
    assert config["models"]["assets"]["resnet18"] == {str(weights): __import__("vitalstudy.io").io.sha256_file(weights)}
    model = load_model("resnet18", weights=weights)
    assert torch.equal(model.fc.weight, reference.fc.weight)


def test_timm_and_import_models_are_inferred(repo, tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    monkeypatch.chdir(repo)
    checkpoint = tmp_path / "r10t.pth"
    reference = timm.create_model("resnet10t")
    torch.save(reference.state_dict(), checkpoint)
    config = load(_config(tmp_path, {"targets": ["r10t", "tiny"], "declare": {
        "r10t": {"source": "timm", "architecture": "resnet10t", "weights": str(checkpoint), "input_size": 64},
        "tiny": IMPORT_MODEL}}, metrics={"fid": {"feature_model": "tiny"}}))
    timm_decl, tiny = config["models"]["declare"]["r10t"], config["models"]["declare"]["tiny"]
    assert list(timm_decl["class_layers"]) == ["conv1.0", "layer1", "layer2", "layer3", "layer4"]  # timm feature_info
    assert timm_decl["classifier"] == "fc" and timm_decl["relevance"]["composite"] is None
    assert list(tiny["class_layers"]) == ["0.0", "1", "2", "3"] and tiny["classifier"] == "6"
    assert "canonizer" in tiny["relevance"]["reason"]
    assert config["models"]["weights"] == {}  # declared weight files stay in the declaration
    assert required_assets("r10t") == [checkpoint] and required_assets("tiny") == []
    loaded = load_model("r10t")
    assert torch.equal(loaded.fc.weight, reference.fc.weight)
    assert load_model("tiny")(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)


def test_timm_without_checkpoint_is_a_config_error(repo, tmp_path, monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.chdir(repo)
    with pytest.raises(ConfigError, match=r"^models.declare.r10t.weights: a timm model needs a local checkpoint"):
        load(_config(tmp_path, {"targets": ["r10t"], "declare": {"r10t": {"source": "timm", "architecture": "resnet10t"}}}))


@pytest.mark.parametrize("key, value, expected", [
    ("class_layers", {"0.0": 1, "2.O": 1}, "models.declare.tiny.class_layers: tiny has no layer '2.O'; nearest: 2.0, 2.1, 2.2"),
    ("classifier", "head", "models.declare.tiny.classifier: tiny has no layer 'head'; nearest: "),
    ("neuron_layer", "33", "models.declare.tiny.neuron_layer: tiny has no layer '33'; nearest: 3"),
])
def test_wrong_layer_is_one_line_with_nearest_names(repo, tmp_path, monkeypatch, key, value, expected):
    monkeypatch.chdir(repo)
    with pytest.raises(ConfigError) as info:
        load(_config(tmp_path, {"targets": ["tiny"], "declare": {"tiny": {**IMPORT_MODEL, key: value}}},
                     metrics={"fid": {"feature_model": "tiny"}}))
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message


def test_wrong_neuron_layer_names_nearest(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    with pytest.raises(ConfigError, match=r"^targets.neurons\[0\].layer: resnet18 has no layer 'layer5'; nearest: layer1"):
        load(_config(tmp_path, {"targets": ["resnet18"]}, metrics={"fid": {"feature_model": "resnet18"}},
                     targets={"classes": ["n07920052"], "neurons": [{"layer": "layer5", "channels": [1]}]}))


def test_unknown_model_names_the_nearest(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    with pytest.raises(ConfigError, match=r"^models.targets\[0\]: unknown model 'resnet181'; nearest: resnet18"):
        load(_config(tmp_path, {"targets": ["resnet181"]}))


def test_layers_command_marks_the_defaults(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert main(["layers", "tiny", "--configfile", *_config(tmp_path, {"targets": ["tiny"], "declare": {"tiny": IMPORT_MODEL}},
                                                              metrics={"fid": {"feature_model": "tiny"}})]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "18 hookable layers" in lines[0] and "(1, 3, 32, 32)" in lines[0]
    marked = {line.split()[1]: line for line in lines[2:] if line.startswith("*")}
    assert set(marked) == {"0.0", "1", "2", "3", "6"}
    assert "(1, 16, 4, 4)" in marked["3"] and "last hidden" in marked["3"] and "classifier" in marked["6"]


def test_loaded_weight_file_goes_into_the_next_record(tmp_path):
    path = tmp_path / "r50.pth"
    model = load_model("resnet50", pretrained=False)
    torch.save(model.state_dict(), path)
    load_model("resnet50", weights=path)
    record = Provenance("test", {})
    record.write(tmp_path / "record.json")
    assert str(path) in record.record["inputs"]
    with pytest.raises(MissingAssetError):
        load_model("resnet50", weights=tmp_path / "absent.pth")
