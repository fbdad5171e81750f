"""Fourier, MACO and DeepInversion through the shared loop: valid images for EfficientNet-Lite0 and
an untrained ResNet50 in a few steps, a deterministic MACO magnitude, DeepInversion's refusals,
and the same bytes for the same seed."""

import numpy as np
import pytest
import torch

from vitalstudy.data.sources import build_index
from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.generate import run_job
from vitalstudy.fv.settings import default_method_config
from vitalstudy.fv.loop import optimise
from vitalstudy.fv.maco import natural_spectrum, spectrum_path
from vitalstudy.models import build_model, get_spec, load_model
from vitalstudy.models.features import capture_outputs
from vitalstudy.targets import parse_target

CPU = torch.device("cpu")
FEW = {"steps": 3, "lr": 0.05}
CONFIGS = {  # the schema's defaults, fewer steps
    "fourier": default_method_config("fourier", **{**FEW, "lr": 1.0}, views_per_step=2),
    "fourier_lucid": default_method_config("fourier_lucid", **FEW),
    "maco": default_method_config("maco", **{**FEW, "lr": 1.0}, views_per_step=2),
    "deepinversion": default_method_config("deepinversion", **FEW, images_per_target=2),
}


@pytest.fixture(scope="module")
def spectrum_run(tmp_path_factory):
    """A run directory holding MACO's spectrum asset at 224 px, from the bundled photos."""
    run = tmp_path_factory.mktemp("maco")
    index, _ = build_index({"source": "bundled"}, seed=0)
    magnitude, used, _ = natural_spectrum(index, 224, count=4, seed=0)
    again, used_again, _ = natural_spectrum(index, 224, count=4, seed=0)
    assert np.array_equal(magnitude, again) and used == used_again  # deterministic for a fixed image set
    assert magnitude.shape == (3, 224, 113) and (magnitude > 0).all()
    path = spectrum_path(run, 224)
    path.parent.mkdir(parents=True)
    np.savez(path, magnitude=magnitude)
    return run


def _method(name, spec, model, run):
    from vitalstudy.fv.registry import get_method

    return get_method(name).method_class()(name, spec, model, CONFIGS[name], run, CPU)


@pytest.mark.parametrize("method", ["fourier", "fourier_lucid", "maco", "deepinversion"])
@pytest.mark.parametrize("model_name", ["efficientnet_lite0", "resnet50"])
def test_valid_images_in_a_few_steps(method, model_name, spectrum_run):
    spec = get_spec(model_name)
    model = load_model(model_name) if model_name.startswith("efficientnet") else \
        build_model(spec, pretrained=False).eval().requires_grad_(False)
    targets = [parse_target("n07920052"), parse_target("n02123159")]
    plan = _method(method, spec, model, spectrum_run).plan(targets, {})
    generators = [torch.Generator().manual_seed(i) for i in range(len(targets) * plan.images_per_target)]
    result = optimise(plan.parameterisation, plan.objective, spec.normalize, plan.transforms, plan.settings,
                      generators, CPU)
    assert result.images.shape == (len(generators), 3, 224, 224)
    assert result.images.min() >= 0 and result.images.max() <= 1 and result.images.std() > 0.01
    assert torch.isfinite(torch.tensor(result.losses)).all()
    assert result.alpha.shape == (len(generators), 224, 224) and result.alpha.max() == pytest.approx(1.0)
    assert result.compute["forward_passes"] == plan.settings.steps * plan.settings.views_per_step


def test_inner_neuron_objective_for_fourier_and_maco(spectrum_run):
    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    for method in ("fourier", "fourier_lucid", "maco"):
        plan = _method(method, spec, model, spectrum_run).plan([parse_target("head_c7")], {})
        x = spec.normalize(plan.parameterisation.images(plan.parameterisation.init([torch.Generator().manual_seed(0)])))
        loss = plan.objective(x)
        with capture_outputs(model, ["head.1"]) as acts:  # the BatchNorm before the head's closing ReLU6
            model(x)
        assert loss.shape == (1,) and loss.item() == pytest.approx(-acts["head.1"][0, 7].mean().item(), rel=1e-5)


def test_deepinversion_refuses_models_without_batchnorm_and_inner_neurons():
    with pytest.raises(VitalStudyError, match="DeepInversion needs BatchNorm statistics and vit_l_16 has no BatchNorm"):
        _method("deepinversion", get_spec("vit_l_16"), torch.nn.Identity(), None)
    method = _method("deepinversion", get_spec("efficientnet_lite0"), torch.nn.Identity(), None)
    with pytest.raises(VitalStudyError, match="classes only"):
        method.group_key(parse_target("head_c3"))


def test_deepinversion_targets_do_not_share_statistics():
    """BN statistics are per target group: a target's loss ignores the other target's images."""
    from vitalstudy.fv.deepinversion import DeepInversionObjective

    model = load_model("efficientnet_lite0")
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    both = DeepInversionObjective(model, [1, 2], 2, 0.01, 10, 1e-4, 1e-5)(x)
    first = DeepInversionObjective(model, [1], 2, 0.01, 10, 1e-4, 1e-5)(x[:2])
    assert torch.allclose(both[:2], first, atol=1e-5)
    changed = x.clone()
    changed[2:] = torch.randn(2, 3, 64, 64)  # the other target's images change: this target's loss does not
    assert torch.allclose(DeepInversionObjective(model, [1, 2], 2, 0.01, 10, 1e-4, 1e-5)(changed)[:2], first, atol=1e-5)


def test_same_seed_same_bytes_for_every_baseline(spectrum_run, tmp_path):
    outputs = {}
    for attempt in ("a", "b"):
        run = tmp_path / attempt
        (run / "02_fv" / "_assets").mkdir(parents=True)
        (run / "02_fv" / "_assets" / "maco_spectrum_224.npz").write_bytes(spectrum_path(spectrum_run, 224).read_bytes())
        for method in ("fourier", "fourier_lucid", "maco", "deepinversion"):
            result = run_job(run, "efficientnet_lite0", method, ["n07920052"], 0, CONFIGS[method], CPU,
                              batch_size=2, log=lambda *_: None)
            outputs[attempt, method] = open(result.records[0]["png"]["path"], "rb").read()
    for method in ("fourier", "fourier_lucid", "maco", "deepinversion"):
        assert outputs["a", method] == outputs["b", method]


def test_maco_image_keeps_the_magnitude_and_ignores_phase_scale(spectrum_run):
    """Only the phase is free: the decorrelated image's spectrum stays proportional to the fixed
    magnitude, and the phase enters standardised (a rescaled or shifted phase gives the same image)."""
    from vitalstudy.fv.color import HORAMA_COLOR_MATRIX, decorrelate
    from vitalstudy.fv.maco import MacoImage

    magnitude = torch.from_numpy(np.load(spectrum_path(spectrum_run, 224))["magnitude"]).double()
    image = MacoImage(magnitude)
    phase = image.init([torch.Generator().manual_seed(3)]).double()
    pixels = image.images(phase)
    assert torch.allclose(pixels, image.images(3.0 * phase + 1.5), atol=1e-4)  # Horama's std + 1e-4
    spatial = decorrelate(torch.logit(pixels), HORAMA_COLOR_MATRIX)  # undo sigmoid and colour recorrelation
    observed = torch.fft.rfft2(spatial, norm="ortho").abs()[0]
    inner = (slice(None), slice(1, None), slice(1, -1))  # bins without a Hermitian twin inside the rfft
    ratio = observed[inner] / magnitude[inner]
    assert ratio.std() / ratio.mean() < 1e-4  # float32 colour matrix; a free magnitude gives O(1)


def test_maco_above_the_model_resolution(tmp_path):
    """The paper also ran MACO at 1024 px: the image is larger than the model's input and the
    model sees resized crops of it."""
    index, _ = build_index({"source": "bundled"}, seed=0)
    magnitude, _, _ = natural_spectrum(index, 320, count=2, seed=0)
    path = spectrum_path(tmp_path, 320)
    path.parent.mkdir(parents=True)
    np.savez(path, magnitude=magnitude)
    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    from vitalstudy.fv.registry import get_method

    config = default_method_config("maco", **{**FEW, "lr": 1.0}, resolution=320)
    method = get_method("maco").method_class()("maco", spec, model, config, tmp_path, CPU)
    plan = method.plan([parse_target("n07920052")], {})
    result = optimise(plan.parameterisation, plan.objective, spec.normalize, plan.transforms, plan.settings,
                      [torch.Generator().manual_seed(0)], CPU)
    assert plan.resolution == 320 and result.images.shape == (1, 3, 320, 320) and result.alpha.shape == (1, 320, 320)


def test_neuron_objective_reads_the_pre_activation_of_a_closing_relu():
    """A channel that is off everywhere on a grey start image still gets a gradient: the objective
    reads the input of the layer's closing ReLU (Lite0's head, a ResNet bottleneck) and the plain
    output of a layer that ends otherwise (a Lite0 block ends in a residual addition)."""
    from vitalstudy.models.features import capture_pre_activation

    lite = load_model("efficientnet_lite0")
    x = torch.randn(1, 3, 224, 224)
    with capture_pre_activation(lite, "head") as pre, capture_outputs(lite, ["head.1", "head"]) as plain:
        lite(x)
    assert torch.equal(pre["head"], plain["head.1"]) and (pre["head"] < 0).any()
    assert torch.equal(pre["head"].clamp(0, 6), plain["head"])
    block = get_spec("efficientnet_lite0").neuron_layers[-1].name
    with capture_pre_activation(lite, block) as pre, capture_outputs(lite, [block]) as plain:
        lite(x)
    assert torch.equal(pre[block], plain[block])
    resnet = build_model(get_spec("resnet50"), pretrained=False).eval()
    with capture_pre_activation(resnet, "layer4.2") as pre, capture_outputs(resnet, ["layer4.2"]) as plain:
        resnet(x)
    assert (pre["layer4.2"] < 0).any() and torch.equal(pre["layer4.2"].clamp_min(0), plain["layer4.2"])

    grey = torch.full((1, 3, 224, 224), 0.5, requires_grad=True)
    from vitalstudy.fv.objectives import ActivationObjective

    spec = get_spec("efficientnet_lite0")
    ActivationObjective(lite, [parse_target("head_c12")])(spec.normalize(grey)).sum().backward()
    assert grey.grad.abs().sum() > 0
