"""Fourier feature visualization, two named methods (PAPER_NOTES §2, §2b):

- `fourier`, the paper's baseline: "the same settings as for MACO, only ... regular Fourier
  initialization, i.e., without fixed magnitude" (App. A.1), which is Horama's `fourier()`: a
  complex N(0, 1) spectrum, standardised each step, scaled by 1/f^1.5 * side, inverse FFT,
  standardised again, colour-recorrelated and squashed by a sigmoid; MACO's views (random crops +
  noise) each step; the optimiser and budget of MACO.
- `fourier_lucid`, Lucid/Lucent's own recipe: spectrum scaled by 1/f, sigmoid, Adam lr 0.05, 512
  steps, pad/jitter/scale/rotate. A different, much stronger baseline on small models; labelled
  "Fourier (Lucid)" wherever it appears.

`fourier_preconditioner` and `standardise` are the reusable pieces (MACO and accentuation share them).
"""

from __future__ import annotations

import torch

from vitalstudy.fv.color import HORAMA_COLOR_MATRIX, LUCID_COLOR_MATRIX, recorrelate
from vitalstudy.fv.objectives import NEURON_OBJECTIVE, ActivationMethod, ActivationObjective
from vitalstudy.fv.plan import Plan, loop_settings
from vitalstudy.fv.transforms import LucidTransforms, maco_views


def frequency_scale(size: int, decay: float) -> torch.Tensor:
    """1 / max(|f|, 1/size)^decay for an rfft2 spectrum of a size x size image."""
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    return 1.0 / torch.sqrt(fx ** 2 + fy ** 2).clamp_min(1.0 / size) ** decay


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Horama's `standardize` per batch item: minus the mean, over (std + 1e-4) of the whole item
    (complex tensors included: the std of a complex tensor is that of its modulus deviations)."""
    dims = tuple(range(1, x.dim()))
    centred = x - x.mean(dim=dims, keepdim=True)
    return centred / (centred.flatten(1).std(dim=1) + 1e-4).view(-1, *([1] * (x.dim() - 1)))


def spectrum_to_pixels(spectrum: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, size, size//2+1) complex spectrum -> (B, 3, size, size) pixels in [0, 1]: inverse FFT,
    standardised, Horama's colour recorrelation, sigmoid (Horama's preconditioner tail, with the
    sigmoid mapped to the valid pixel range; the model's normalisation follows in the loop)."""
    spatial = standardise(torch.fft.irfft2(spectrum, s=(size, size)))
    return torch.sigmoid(recorrelate(spatial, HORAMA_COLOR_MATRIX))


def fourier_scaler(size: int, decay: float = 1.5) -> torch.Tensor:
    """Horama's `get_fft_scale`: 1 / max(|f|, 1/size)^decay * sqrt(size * size)."""
    return frequency_scale(size, decay) * float(size)


def fourier_preconditioner(spectrum: torch.Tensor, scaler: torch.Tensor) -> torch.Tensor:
    """Horama's `fourier_preconditionner`: standardised spectrum times the 1/f scaler, then to pixels."""
    return spectrum_to_pixels(standardise(spectrum) * scaler.to(spectrum.device), spectrum.shape[2])


class FourierImage:
    """The paper's Fourier parameterisation (Horama `fourier()`): a free complex spectrum, stored
    as (B, 3, H, W//2+1, 2) real and imaginary parts, initialised N(0, 1) (real parts drawn first,
    as Horama's Lucid buffer)."""

    def __init__(self, size: int, decay: float = 1.5):
        self.size, self.decay = size, decay
        self.scaler = fourier_scaler(size, decay)

    def init(self, generators: list[torch.Generator]) -> torch.Tensor:
        shape = (3, self.size, self.size // 2 + 1)
        return torch.stack([torch.stack([torch.randn(shape, generator=g), torch.randn(shape, generator=g)], dim=-1)
                            for g in generators])

    def images(self, params: torch.Tensor) -> torch.Tensor:
        return fourier_preconditioner(torch.view_as_complex(params.contiguous()), self.scaler)

    def project_(self, params: torch.Tensor) -> None:
        """Nothing to project: the sigmoid keeps pixels valid."""


def _objective_name(targets) -> str:
    return "class logit" if targets[0].kind == "class" else NEURON_OBJECTIVE


class FourierMethod(ActivationMethod):
    """The paper's Fourier baseline: MACO's settings with a free spectrum."""

    name = "fourier"

    def plan(self, targets, references) -> Plan:
        cfg = self.config
        size = int(cfg["resolution"] or self.spec.input_size)
        settings = loop_settings(cfg, schedule="constant")
        views = maco_views(cfg, self.spec)
        decay = float(cfg["decay"])
        hyper = {"parameterisation": "free Fourier spectrum, standardised, 1/f^decay (Horama fourier())",
                 "decay": decay, "views": views.describe(), "objective": _objective_name(targets),
                 "loop": settings.as_dict()}
        return Plan(FourierImage(size, decay), [views], ActivationObjective(self.model, targets), settings, hyper, size)


class LucidFourierImage:
    """Lucid's parameterisation: spectrum N(0, 0.01) scaled by 1/f^decay, orthonormal inverse FFT / 4,
    Lucid's colour recorrelation, sigmoid."""

    def __init__(self, size: int, decay: float = 1.0, init_std: float = 0.01):
        self.size, self.init_std = size, init_std
        self.scale = frequency_scale(size, decay)

    def init(self, generators: list[torch.Generator]) -> torch.Tensor:
        shape = (3, self.size, self.size // 2 + 1, 2)
        return torch.stack([torch.randn(shape, generator=g) * self.init_std for g in generators])

    def images(self, params: torch.Tensor) -> torch.Tensor:
        spectrum = torch.view_as_complex(params.contiguous()) * self.scale.to(params.device)
        spatial = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        return torch.sigmoid(recorrelate(spatial, LUCID_COLOR_MATRIX))

    def project_(self, params: torch.Tensor) -> None:
        """Nothing to project: the sigmoid keeps pixels valid."""


class LucidFourierMethod(ActivationMethod):
    """Lucid/Lucent's Fourier recipe, a named variant (not the paper's baseline)."""

    name = "fourier_lucid"

    def plan(self, targets, references) -> Plan:
        cfg = self.config
        size = int(cfg["resolution"] or self.spec.input_size)
        settings = loop_settings(cfg, schedule="constant")
        transforms = [LucidTransforms(self.spec.input_size)] if cfg["transforms"] else []
        decay = float(cfg["decay"])
        hyper = {"parameterisation": "Lucid: colour-decorrelated Fourier spectrum, 1/f^decay, sigmoid",
                 "decay": decay, "transforms": "lucid standard" if transforms else "none",
                 "objective": _objective_name(targets), "loop": settings.as_dict()}
        return Plan(LucidFourierImage(size, decay), transforms, ActivationObjective(self.model, targets),
                    settings, hyper, size)
