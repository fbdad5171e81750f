"""Fourier feature visualization (Olah et al. 2017, Lucid): the image is a colour-decorrelated
Fourier spectrum scaled by 1/f^decay, mapped to pixels with a sigmoid, optimised to maximise a
class logit or a channel's mean activation under Lucid's standard transforms (PAPER_NOTES §2)."""

from __future__ import annotations

import torch

from vitalstudy.fv.color import recorrelate
from vitalstudy.fv.objectives import NEURON_OBJECTIVE, ActivationMethod, ActivationObjective
from vitalstudy.fv.plan import Plan, loop_settings
from vitalstudy.fv.transforms import LucidTransforms


def frequency_scale(size: int, decay: float) -> torch.Tensor:
    """1 / max(|f|, 1/size)^decay for an rfft2 spectrum of a size x size image."""
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    return 1.0 / torch.sqrt(fx ** 2 + fy ** 2).clamp_min(1.0 / size) ** decay


class FourierImage:
    def __init__(self, size: int, decay: float = 1.0, init_std: float = 0.01):
        self.size, self.init_std = size, init_std
        self.scale = frequency_scale(size, decay)

    def init(self, generators: list[torch.Generator]) -> torch.Tensor:
        shape = (3, self.size, self.size // 2 + 1, 2)
        return torch.stack([torch.randn(shape, generator=g) * self.init_std for g in generators])

    def images(self, params: torch.Tensor) -> torch.Tensor:
        spectrum = torch.view_as_complex(params.contiguous()) * self.scale.to(params.device)
        spatial = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        return torch.sigmoid(recorrelate(spatial))

    def project_(self, params: torch.Tensor) -> None:
        """Nothing to project: the sigmoid keeps pixels valid."""


class FourierMethod(ActivationMethod):
    name = "fourier"

    def plan(self, targets, references) -> Plan:
        cfg = self.config
        size = int(cfg.get("resolution") or self.spec.input_size)
        settings = loop_settings(cfg, schedule="constant")
        transforms = [LucidTransforms(self.spec.input_size)] if cfg["transforms"] else []
        hyper = {"parameterisation": "colour-decorrelated Fourier spectrum, 1/f^decay, sigmoid",
                 "decay": cfg["decay"], "transforms": "lucid standard" if transforms else "none",
                 "objective": "class logit" if targets[0].kind == "class" else NEURON_OBJECTIVE,
                 "loop": settings.as_dict()}
        return Plan(FourierImage(size, cfg["decay"]), transforms, ActivationObjective(self.model, targets),
                    settings, hyper, size)
