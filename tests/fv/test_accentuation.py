"""Feature accentuation: the preconditioner, its inverse and the gradient-only 1/f scaling equal
Horama's on identical tensors; colour de-correlation and the feature-space distance equal
faccent's; both methods run through the shared loop from their seed image and record it."""

import json

import pytest
import torch

from vitalstudy.errors import ConfigError
from vitalstudy.fv.accentuation import SeedDistance, gradient_scale, seed_spectrum, spectrum_image
from vitalstudy.fv.color import decorrelate, recorrelate
from vitalstudy.fv.generate import run_job
from vitalstudy.fv.settings import default_method_config
from vitalstudy.models import get_spec, load_model
from vitalstudy.targets import accentuation_id, parse_target

CPU = torch.device("cpu")
horama = pytest.importorskip("horama", reason="the `bench` extra (horama) is not installed")


def _image(size=32, seed=0):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def test_gradient_scale_is_horamas_fft_scale():
    from horama.fourier_fv import get_fft_scale

    for size, decay in ((32, 1.5), (224, 1.0), (64, 2.0)):  # odd sides: Horama keeps one column more than rfft2
        assert torch.allclose(gradient_scale(size, decay), get_fft_scale(size, size, decay)[0].real, rtol=1e-6)


def test_inverse_preconditioner_is_horamas():
    from horama.feature_accentuation import inverse_image_spectrum

    for seed in range(3):
        image = _image(seed=seed) * 3 - 1  # any range: both min-max it first
        ours = seed_spectrum(image[None])[0]
        theirs = inverse_image_spectrum(image, "cpu")
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-3)
        assert (ours - theirs).abs().max() / theirs.abs().max() < 1e-5


def test_preconditioner_and_gradient_equal_horamas():
    from horama.feature_accentuation import SpectrumBackwardScaler, fa_preconditionner
    from horama.fourier_fv import get_fft_scale

    size, decay = 32, 1.5
    spectrum = seed_spectrum(_image(size)[None])[0]
    weights = torch.randn(3, size, size, generator=torch.Generator().manual_seed(1))
    ours_in = spectrum.clone().requires_grad_(True)
    ours = spectrum_image(ours_in[None], gradient_scale(size, decay))[0]
    theirs_in = spectrum.clone().requires_grad_(True)
    theirs = fa_preconditionner(theirs_in, SpectrumBackwardScaler(get_fft_scale(size, size, decay)), (0.0, 1.0), "cpu")
    assert torch.allclose(ours, theirs, atol=1e-6)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert torch.allclose(ours_in.grad, theirs_in.grad, rtol=1e-4, atol=1e-4 * theirs_in.grad.abs().max())
    # the 1/f scaler touches the gradient only: without it the forward image is the same
    plain = spectrum_image(spectrum[None], torch.ones(size, size // 2 + 1))[0]
    assert torch.allclose(plain, ours.detach(), atol=1e-6)


def test_the_start_image_is_the_seed():
    """A seed spanning [0, 1] comes back up to the inverse sigmoid's epsilon."""
    seed = _image(64)
    seed[:, 0, 0], seed[:, 0, 1] = 0.0, 1.0
    back = spectrum_image(seed_spectrum(seed[None]), gradient_scale(64, 1.5))[0]
    assert (back - seed).abs().max() < 2e-3


def test_colour_decorrelation_is_faccents():
    faccent_param = pytest.importorskip("faccent.param", reason="faccent is not installed")
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(recorrelate(x), faccent_param.recorrelate_colors(x), atol=1e-6)
    assert torch.allclose(decorrelate(x), faccent_param.decorrelate_colors(x), atol=1e-5)


def test_feature_distance_is_faccents_l2_compare():
    objectives = pytest.importorskip("faccent.objectives", reason="faccent is not installed")
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3))
    seed, image = torch.randn(1, 3, 12, 12), torch.randn(1, 3, 12, 12)
    distance = SeedDistance(conv, seed, "feature", penalty=2.0, layer="0").distance(image)
    features = torch.stack([conv(image), conv(seed)], dim=1)  # faccent's hook: (transforms, batch, C, H, W)
    theirs = -objectives.l2_compare("layer").objective_func(lambda _layer: features)
    assert distance.shape == (1,) and distance.item() == pytest.approx(theirs.item(), rel=1e-5)
    pixel = SeedDistance(conv, seed, "pixel", penalty=3.0, layer=None)
    assert pixel(image).item() == pytest.approx(3.0 * (image - seed).square().mean().item(), rel=1e-5)
    with pytest.raises(ConfigError, match="distance must be"):
        SeedDistance(conv, seed, "cosine", 1.0, None)


def test_accentuation_ids_and_parsing():
    entries = [{"image": "skimage_chelsea", "target": "n02123159"},
               {"image": "/some/dir/My Photo.jpg", "target": "head_c7"}]
    ids = [accentuation_id(e) for e in entries]
    assert ids == ["accent-skimage_chelsea-n02123159", "accent-My_Photo-head_c7"]
    cat, unit = (parse_target(i, accentuations=entries) for i in ids)
    assert cat.kind == "class" and cat.wnid == "n02123159" and cat.reference_id == "n02123159"
    assert unit.kind == "neuron" and unit.channel == 7 and unit.base().id == "head_c7"
    assert cat.as_dict()["accentuates"] == "n02123159" and cat.as_dict()["label"] == "tiger cat"
    with pytest.raises(ConfigError, match="no such entry"):
        parse_target("accent-x-n02123159", accentuations=entries)


STEPS = {"steps": 3, "lr": 1.0, "views_per_step": 2}


@pytest.mark.parametrize("distance", ["pixel", "feature"])
def test_accentuation_through_the_loop_records_its_seed(tiny_run, tmp_path, distance):
    run = tmp_path / "run"
    run.mkdir()
    (run / "01_references").symlink_to(tiny_run / "01_references")
    entries = [{"image": "skimage_chelsea", "target": "n02123159"}, {"image": "skimage_coffee", "target": "head_c7"}]
    from vitalstudy.data.sources import build_index

    index, _ = build_index({"source": "bundled"}, seed=0)
    (run / "00_index").mkdir(parents=True)
    index.to_csv(run / "00_index" / "images.csv", index=False)
    model = load_model("efficientnet_lite0")
    ids = [accentuation_id(e) for e in entries]
    pngs = {}
    for method, cfg in (("accentuation", {**STEPS, "distance": distance}),
                        ("vital_accentuation", {"steps": 3, "lr": 0.1, "distance": distance, "penalty": 1.0})):
        targets = ids if method == "accentuation" else ids[:1]  # VITAL's neuron references are not in tiny_run
        result = run_job(run, "efficientnet_lite0", method, targets, 0, default_method_config(method, **cfg), CPU, batch_size=2,
                         accentuations=entries, model=model, log=lambda *_: None)
        for record in result.records:
            sidecar = json.loads(open(record["json"]["path"]).read())
            seed = sidecar["hyperparameters"]["seed_images"][record["target"]]
            assert seed["path"].endswith((".png", ".jpg")) and len(seed["sha256"]) == 64
            assert sidecar["hyperparameters"]["distance"] == distance
            assert sidecar["target"]["seed_image"].startswith("skimage_")
            pngs[method, record["target"]] = open(record["png"]["path"], "rb").read()
    assert len(pngs) == 3


def test_accentuation_stays_near_its_seed_and_raises_the_target():
    """A few steps from the seed (whole-image views, no noise, so the model sees what is measured):
    the logit rises and the image is still close to the seed."""
    from vitalstudy.data.classes import imagenet_classes
    from vitalstudy.fv.accentuation import AccentuationMethod, load_seeds
    from vitalstudy.fv.loop import optimise
    from vitalstudy.data.sources import build_index

    spec, model = get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")
    index, _ = build_index({"source": "bundled"}, seed=0)
    path = index.set_index("image_id").loc["skimage_coffee", "path"]
    entries = [{"image": path, "target": "n02123159"}]  # accentuate "tiger cat" in the espresso photo
    target = parse_target(accentuation_id(entries[0]), accentuations=entries)
    settings = default_method_config("accentuation", steps=5, lr=10.0, noise=0.0, views_per_step=1,
                                     crops={"mean": 1.0, "std": 0.0, "centre_std": 0.0})
    plan = AccentuationMethod("accentuation", spec, model, settings, None, CPU).plan([target], {})
    result = optimise(plan.parameterisation, plan.objective, spec.normalize, plan.transforms, plan.settings,
                      [torch.Generator().manual_seed(0)], CPU, image_prior=plan.image_prior)
    seed = load_seeds(spec, [path])
    k = imagenet_classes().index("n02123159")
    with torch.no_grad():
        before, after = (model(spec.normalize(x))[0, k].item() for x in (seed, result.images))
    assert after > before + 0.5
    assert (result.images - seed).abs().mean() < 0.05


def test_vital_accentuation_reads_vitals_settings_under_its_own():
    from vitalstudy.fv.settings import job_settings, method_config

    generate = {"checkpoint_every": 7, "vital": {"steps": 5, "lr": 1.0}, "vital_accentuation": {"steps": 2},
                "maco": {"steps": 9}}
    assert method_config(generate, "vital_accentuation") == {"checkpoint_every": 7, "steps": 2, "lr": 1.0}
    assert set(job_settings(generate, "vital_accentuation")) == {"checkpoint_every", "vital", "vital_accentuation"}


@pytest.mark.parametrize("method", ["accentuation", "vital_accentuation"])
def test_bench_times_accentuation_methods_on_a_stand_in_seed(method):
    """`vitalstudy bench` gives an accentuation method seed images (it stopped with a TypeError)."""
    from dataclasses import replace

    from vitalstudy.fv.bench import measure_method

    spec = replace(get_spec("efficientnet_lite0"), input_size=64)
    rows = measure_method(method, spec, load_model("efficientnet_lite0"), default_method_config(method, views_per_step=1)
                          if method == "accentuation" else default_method_config(method), CPU, steps=1,
                          candidates=(2,), log=lambda *_: None)
    assert [r["targets"] for r in rows] == [2] and rows[0]["image_steps_per_second"] > 0
