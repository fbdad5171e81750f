"""LRP through zennit conserves relevance (ResNet50 untrained, EfficientNet-Lite0 trained), and
models without a faithful rule set are refused."""

import pytest
import torch

from vitalstudy.data.sources import build_index, load_rgb
from vitalstudy.errors import VitalStudyError
from vitalstudy.models.features import capture_outputs
from vitalstudy.fv.relevance import RelevanceMaps, Start
from vitalstudy.models import build_model, get_spec, load_model


def _photos(spec):
    index, _ = build_index({"source": "bundled"}, seed=0)
    return torch.stack([spec.preprocess(load_rgb(p)) for p in index["path"][:2]])


def _conservation(name, model, start_layer, channel, layers, x, stem_pool="average"):
    maps = RelevanceMaps(get_spec(name), model, stem_pool=stem_pool)
    with torch.no_grad(), capture_outputs(model, [start_layer]) as acts:
        model(x)
    if channel is None:  # the channel most active on both images
        channel = int(acts[start_layer].flatten(2).sum(2).amin(0).argmax())
    initial = acts[start_layer][:, channel].flatten(1).sum(1)
    rel = maps(x, layers, Start("channel", start_layer, (channel, channel)))
    return initial, {l: rel[l].flatten(1).sum(1) for l in layers}


def test_lrp_conserved_resnet50_untrained():
    model = build_model(get_spec("resnet50"), pretrained=False).eval().requires_grad_(False)
    with torch.no_grad():  # untrained BN statistics would be the identity; make them non-trivial
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(0)).relu()
    layers = ["layer3", "layer2", "layer1", "conv1"]
    initial, sums = _conservation("resnet50", model, "layer4.2", 7, layers, x, stem_pool="max")
    assert (initial > 0).all()
    for layer, total in sums.items():
        assert torch.allclose(total, initial, rtol=1e-2), (layer, total, initial)
    # The authors' average-pool substitute for the stem max-pool (the default) keeps everything
    # above the pool and drops the relevance of 2x2 windows that are all zero after the ReLU.
    _, substituted = _conservation("resnet50", model, "layer4.2", 7, layers, x)
    for layer in layers[:3]:
        assert torch.allclose(substituted[layer], sums[layer], rtol=1e-4), layer
    assert ((0.8 * initial < substituted["conv1"]) & (substituted["conv1"] < initial)).all()


def test_lrp_conserved_efficientnet_lite0():
    model = load_model("efficientnet_lite0")
    x = _photos(get_spec("efficientnet_lite0"))
    initial, sums = _conservation("efficientnet_lite0", model, "head", None, ["blocks.10", "blocks.4", "blocks.2", "stem.0"], x)
    assert (initial > 0).all()
    for layer, total in sums.items():
        assert torch.allclose(total, initial, rtol=1e-2), (layer, total, initial)


def test_composite_is_removed_after_use():
    model = load_model("efficientnet_lite0")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
    RelevanceMaps(get_spec("efficientnet_lite0"), model)(x, ["blocks.4"], Start("class", indices=(3,)))
    with torch.no_grad():
        assert torch.equal(model(x), before)
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("name", ["vit_l_16", "convnext_base"])
def test_relevance_refused_without_faithful_rules(name):
    with pytest.raises(VitalStudyError, match="not available for .*no canonizer for LayerNorm and attention"):
        RelevanceMaps(get_spec(name), torch.nn.Identity())


def test_guided_backprop_and_concept_starts_run():
    model = load_model("efficientnet_lite0")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    gbp = RelevanceMaps(get_spec("efficientnet_lite0"), model, "guided_backprop")(
        x, ["blocks.10"], Start("class", indices=(1, 2)))
    assert gbp["blocks.10"].shape == (2, 112, 14, 14) and gbp["blocks.10"].abs().sum() > 0
    direction = torch.rand(2, 1280)
    lrp = RelevanceMaps(get_spec("efficientnet_lite0"), model)(
        x, ["blocks.10"], Start("direction", "head", directions=direction))
    assert lrp["blocks.10"].abs().sum() > 0


def test_circuit_channels_are_the_most_relevant():
    from vitalstudy.references.circuits import top_channels
    from vitalstudy.data.sources import original_view

    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    index, _ = build_index({"source": "bundled"}, seed=0)
    coffee = index[index.image_id == "skimage_coffee"].iloc[0]
    refs = [{"image_id": coffee.image_id, "path": coffee.path, "view": original_view()}]
    circuit = top_channels(spec, model, "n07920052", refs, 3, torch.device("cpu"))
    channels = [c["channel"] for c in circuit["channels"]]
    relevances = [c["relevance"] for c in circuit["channels"]]
    assert len(set(channels)) == 3 and relevances == sorted(relevances, reverse=True) and relevances[0] > 0
    assert circuit["channels"][0]["target"] == f"head_c{channels[0]}"
    x = spec.preprocess(load_rgb(coffee.path))[None]
    rel = RelevanceMaps(spec, model)(x, ["head"], Start("class", indices=(967,)))["head"].flatten(2).sum(-1)[0]
    assert set(channels) == set(rel.topk(3).indices.tolist())
