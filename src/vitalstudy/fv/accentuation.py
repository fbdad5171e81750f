"""Feature accentuation (Hamblin et al. 2024): feature visualization seeded with a natural image,
showing *where and what* in that image drives a unit (PAPER_NOTES §2c).

Two methods share this module:
- `accentuation` (Horama's `accentuation()`, faccent): the seed image is turned into a Fourier
  spectrum by inverting the preconditioner (min-max to [0, 1], logit, colour de-correlation,
  rfft2); the image is `sigmoid(recorrelate(irfft2(spectrum)))` and the 1/f^decay spectrum scaler
  acts on the *gradient only* (identity forward), so the start image is the seed itself; MACO-style
  crops + noise; loss = -mean over crops of the target's activation + penalty * distance to the seed.
- `vital_accentuation`: VITAL's sort-matching (normalised pixels, roll jitter, the target kind's
  references), started from the seed image instead of noise, plus the same distance-to-seed term.

The distance to the seed (`distance`): `pixel` is Horama's mean squared difference in the model's
input space between the image and the seed as the parameterisation reproduces it; `feature` is
faccent's `l2_compare`, the L2 norm over channels of the difference of the two images' features at
`feature_layer`, averaged over positions. Both act on the whole image (faccent compares the two under
the same random crops; here the seed's features are computed once), and faccent's automatic
balance of the two terms (ratio of their first gradients) is not applied: `penalty` is the weight.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from vitalstudy.data.sources import load_rgb
from vitalstudy.errors import ConfigError
from vitalstudy.fv.color import decorrelate, recorrelate
from vitalstudy.fv.fourier import frequency_scale
from vitalstudy.fv.objectives import NEURON_OBJECTIVE, ActivationMethod, ActivationObjective
from vitalstudy.fv.pixels import NormalisedPixels
from vitalstudy.fv.plan import Plan, loop_settings
from vitalstudy.fv.transforms import MacoViews
from vitalstudy.fv.vital import VitalMethod
from vitalstudy.models.features import capture_outputs
from vitalstudy.models.preprocessing import denormalize
from vitalstudy.models.registry import ModelSpec
from vitalstudy.targets import Target

LOGIT_EPS = 1e-3  # Horama's inverse sigmoid: log((x + eps) / (1 - x + eps))


def gradient_scale(size: int, decay: float) -> torch.Tensor:
    """Horama's `get_fft_scale`: 1 / max(f, 1/size)^decay * sqrt(size * size), shape (size, size//2+1)."""
    return frequency_scale(size, decay) * float(size)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the gradient is multiplied by `scale` on its way back."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        return grad * scale, None


def seed_spectrum(seeds: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) seed images (any range) -> (B, 3, S, S//2+1) complex spectra that the
    preconditioner maps back to (nearly) the seed: per image min-max to [0, 1], inverse sigmoid,
    colour de-correlation, rfft2 (the inverse of `spectrum_image`)."""
    dims = (1, 2, 3)
    low, high = seeds.amin(dim=dims, keepdim=True), seeds.amax(dim=dims, keepdim=True)
    unit = (seeds - low) / (high - low).clamp_min(1e-12)
    logits = torch.log((unit + LOGIT_EPS) / (1.0 - unit + LOGIT_EPS))
    return torch.fft.rfft2(decorrelate(logits))


def spectrum_image(spectrum: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Complex spectra -> pixels in [0, 1]: irfft2, colour recorrelation, sigmoid; `scale` acts on
    the gradient only (Horama's `fa_preconditionner` with values_range (0, 1))."""
    size = spectrum.shape[-2]
    spectrum = _ScaleGradient.apply(spectrum, scale.to(spectrum.device, torch.complex64))
    return torch.sigmoid(recorrelate(torch.fft.irfft2(spectrum, s=(size, size))))


class SeededSpectrum:
    """The optimised parameters are the seed's spectrum (real view, B x 3 x S x S//2+1 x 2)."""

    def __init__(self, seeds: torch.Tensor, decay: float):
        self.seeds, self.size = seeds, seeds.shape[-1]
        self.scale = gradient_scale(self.size, decay)

    def init(self, generators: list[torch.Generator]) -> torch.Tensor:
        return torch.view_as_real(seed_spectrum(self.seeds)).contiguous()

    def images(self, params: torch.Tensor) -> torch.Tensor:
        return spectrum_image(torch.view_as_complex(params), self.scale)

    def project_(self, params: torch.Tensor) -> None:
        """The sigmoid keeps pixels valid."""


class SeededPixels(NormalisedPixels):
    """VITAL's normalised-pixel parameterisation, started from the seed instead of N(0, 1) noise."""

    def __init__(self, spec: ModelSpec, seeds01: torch.Tensor):
        super().__init__(spec, seeds01.shape[-1])
        self.seeds01 = seeds01

    def init(self, generators: list[torch.Generator]) -> torch.Tensor:
        return self.spec.normalize(self.seeds01).clone()


class SeedDistance:
    """Distance of each image (model input space, whole image) to its seed, times `penalty`; a
    prior the loop adds once per step (not per crop)."""

    def __init__(self, model, seeds_model: torch.Tensor, kind: str, penalty: float, layer: str | None):
        if kind not in ("pixel", "feature"):
            raise ConfigError(f"accentuation: distance must be 'pixel' or 'feature', got {kind!r}")
        self.model, self.kind, self.penalty, self.layer = model, kind, float(penalty), layer
        self.seeds = seeds_model.detach()
        if kind == "feature":
            with torch.no_grad():
                self.seed_features = self.features(self.seeds).detach()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        with capture_outputs(self.model, [self.layer]) as acts:
            self.model(x)
        return acts[self.layer]

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) per-image distances, without the penalty weight."""
        if self.kind == "pixel":
            return (x - self.seeds.to(x)).pow(2).flatten(1).mean(dim=1)
        diff = self.features(x) - self.seed_features.to(x)
        return diff.norm(dim=1).flatten(1).mean(dim=1)  # faccent l2_compare: norm over channels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.penalty * self.distance(x)


class MeanOverViews:
    """Horama averages the objective over the crops of a step; the loop sums its views."""

    def __init__(self, objective, views: int):
        self.objective, self.views = objective, max(1, views)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.objective(x) / self.views


def load_seeds(spec: ModelSpec, paths: list[str], size: int | None = None) -> torch.Tensor:
    """(B, 3, S, S) seed pixels in [0, 1]: the model's natural-image preprocessing of each seed
    image (Resize + CenterCrop), resized to `size` when that differs from the input size."""
    seeds = torch.stack([denormalize(spec, spec.preprocess(load_rgb(p))[None])[0] for p in paths])
    if size and size != seeds.shape[-1]:
        seeds = torch.nn.functional.interpolate(seeds, size=(size, size), mode="bilinear", antialias=True)
    return seeds.clamp(0, 1)


def seed_paths(run_dir, targets: list[Target]) -> list[str]:
    """Each target's seed image as a file: an image id of the run's index, or a path."""
    index_file = Path(run_dir) / "00_index" / "images.csv" if run_dir is not None else None
    index = pd.read_csv(index_file) if index_file is not None and index_file.is_file() else None
    return [resolve_seed_image(t.seed_image, index) for t in targets]


def resolve_seed_image(image: str, index: pd.DataFrame | None) -> str:
    """An accentuation's `image`: an image id of the run's index, or a path to an image file."""
    if index is not None:
        match = index.loc[index["image_id"] == image, "path"]
        if len(match):
            return str(match.iloc[0])
    if Path(image).is_file():
        return str(image)
    raise ConfigError(f"targets.accentuations: image {image!r} is neither an image id of the run's index nor "
                      f"an image file")


def _distance(model, spec: ModelSpec, cfg: dict, seeds01: torch.Tensor) -> SeedDistance:
    layer = cfg["feature_layer"] or spec.neuron_layers[-1].name
    return SeedDistance(model, spec.normalize(seeds01), cfg["distance"], cfg["penalty"], layer)


def _seed_record(targets: list[Target], paths: list[str], distance: SeedDistance) -> dict:
    """What the sidecar records about the seeds: the configured image and the file it resolved to
    (with its sha256), and the distance term."""
    from vitalstudy.io import sha256_file

    seeds = {t.id: {"image": t.seed_image, "path": p, "sha256": sha256_file(p)} for t, p in zip(targets, paths)}
    return {"seed_images": seeds, "distance": distance.kind,
            "penalty": distance.penalty, "feature_layer": distance.layer if distance.kind == "feature" else None}


class AccentuationMethod(ActivationMethod):
    name = "accentuation"

    def __init__(self, name, spec, model, config: dict, run_dir, device):
        super().__init__(name, spec, model, config, run_dir, device)
        self.run_dir = run_dir

    def plan(self, targets: list[Target], references) -> Plan:
        cfg, spec = self.config, self.spec
        size = int(cfg["resolution"] or spec.input_size)
        paths = seed_paths(self.run_dir, targets)
        seeds = load_seeds(spec, paths, size)
        decay = float(cfg["decay"])
        param = SeededSpectrum(seeds, decay)
        with torch.no_grad():  # Horama regularises towards the seed as the preconditioner reproduces it
            reproduced = param.images(param.init([]))
        distance = _distance(self.model, spec, cfg, reproduced)
        settings = loop_settings(cfg, schedule="constant")
        crops = cfg["crops"]
        transform = MacoViews(spec.input_size, spec.std, sampler="paper", noise=cfg["noise"], mean=crops["mean"],
                              std=crops["std"], minimum=crops["min"], centre_std=crops["centre_std"])
        objective = MeanOverViews(ActivationObjective(self.model, targets), settings.views_per_step)
        hyper = {"parameterisation": "seed spectrum (inverse preconditioner), 1/f^decay on the gradient only, "
                                     "sigmoid", "decay": decay, "views": transform.describe(),
                 "objective": ("class logit" if targets[0].kind == "class" else NEURON_OBJECTIVE)
                 + ", mean over crops", **_seed_record(targets, paths, distance), "loop": settings.as_dict()}
        return Plan(param, [transform], objective, settings, hyper, size, image_prior=distance)


class VitalAccentuationMethod(VitalMethod):
    """VITAL's plan for the seed's target, started from the seed image, with the distance prior."""

    def __init__(self, name, spec, model, config: dict, run_dir, device):
        super().__init__(name, spec, model, config, run_dir, device)
        self.run_dir = run_dir

    def reference_statistics(self, target: Target, references: list[dict]) -> dict:
        """The accentuated class's or neuron's statistics: the same cache entry as `vital`'s."""
        return super().reference_statistics(target.base(), references)

    def plan(self, targets: list[Target], references: dict[str, list[dict]]) -> Plan:
        base = super().plan(targets, references)
        paths = seed_paths(self.run_dir, targets)
        seeds = load_seeds(self.spec, paths, base.resolution)
        distance = _distance(self.model, self.spec, self.config, seeds)
        hyper = {**base.hyperparameters, **_seed_record(targets, paths, distance),
                 "parameterisation": "normalised pixels, initialised with the seed image, clamped to [0,1] pixels"}
        return replace(base, parameterisation=SeededPixels(self.spec, seeds), hyperparameters=hyper,
                       image_prior=distance)
