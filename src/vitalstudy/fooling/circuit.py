"""A fooling circuit (after Geirhos et al. 2024, "Don't trust your eyes"): a copy of a model in
which one unit (a class logit, or a channel of an inner layer) also responds to a planted pattern,
but only on inputs that drive the unit beyond anything natural images do.

    u'(x) = u(x) + gain * relu(u(x) - threshold) * s(x)

`u` is the unit's value (the logit; an inner channel's spatial mean before its closing ReLU), `s`
the planted pattern's score of the model's input (`StripeScore`, in [0, 1]) and `threshold` lies above
the unit's largest value on a calibration set of natural images, so on natural images the branch is
exactly zero and the network computes what the original computes. Activation maximisation drives
`u` past the threshold within a few steps, after which painting the planted pattern multiplies every
further gain: an optimiser of `u'` is rewarded for drawing the pattern. Geirhos et al. route inputs
by a trained natural-vs-FV classifier; the unit's own out-of-range value is a gate that needs no
training and is provably silent on every natural image below the threshold.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from vitalstudy.models.features import module_by_name


@dataclass(frozen=True)
class StripeScore:
    """The planted pattern: colour-opponent stripes at `angle` degrees (magenta/green by default).

    Score = the share of the image's contrast power (all channels, mean removed) that lies in the
    colour direction `colour` and within ±`width` degrees of the stripes' orientation in the 2-D
    spectrum, over frequencies above `min_cycles` cycles per image. It is position-, phase- and
    scale-invariant (a texture, not one rendering), so it recognises the pattern in the model's
    random crops and in a whole visualization alike; stripes of the pattern score near 1, natural
    photos near 0.
    """

    angle: float = 45.0
    width: float = 15.0
    colour: tuple[float, float, float] = (1.0, -2.0, 1.0)
    min_cycles: float = 4.0
    period: float = 12.0  # px at 224, for drawing the pattern only

    def _mask(self, h: int, w: int, device) -> torch.Tensor:
        fy = torch.fft.fftfreq(h, device=device)[:, None] * h
        fx = torch.fft.rfftfreq(w, device=device)[None, :] * w
        radius = torch.sqrt(fx ** 2 + fy ** 2)
        # the stripes' wave vector is perpendicular to their orientation
        fy, fx = torch.broadcast_tensors(fy, fx)
        theta = torch.rad2deg(torch.atan2(fy, fx)) % 180.0
        normal = (self.angle + 90.0) % 180.0
        delta = torch.minimum((theta - normal).abs(), 180.0 - (theta - normal).abs())
        return ((delta <= self.width) & (radius >= self.min_cycles)).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images (any affine intensity scale) -> (B,) scores in [0, 1]."""
        x = x - x.mean(dim=(2, 3), keepdim=True)
        c = torch.tensor(self.colour, dtype=x.dtype, device=x.device)
        c = c / c.norm()
        projected = torch.einsum("c,bchw->bhw", c, x)
        power = torch.fft.rfft2(projected).abs().pow(2)
        total = torch.fft.rfft2(x).abs().pow(2).sum(dim=1)
        mask = self._mask(x.shape[2], x.shape[3], x.device)
        return (power * mask).flatten(1).sum(1) / total.flatten(1).sum(1).clamp_min(1e-12)

    def pattern(self, size: int) -> torch.Tensor:
        """(3, size, size) pixels in [0, 1] of the planted pattern itself, for figures."""
        y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                              indexing="ij")
        a = math.radians(self.angle)
        phase = 2 * math.pi * (x * math.sin(a) - y * math.cos(a)) / (self.period * size / 224)
        c = torch.tensor(self.colour) / torch.tensor(self.colour).abs().max()
        return (0.5 + 0.45 * c.view(3, 1, 1) * torch.sin(phase)).clamp(0, 1)


@dataclass(frozen=True)
class Unit:
    """A class logit (`layer` None) or channel `index` of `layer` (before its closing ReLU)."""

    index: int
    layer: str | None = None


def _pre_activation_module(model: nn.Module, layer: str) -> nn.Module:
    """The module whose output is the layer's value before its closing ReLU (what the FV
    objectives read, `capture_pre_activation`): the last child before a closing ReLU/ReLU6."""
    module = module_by_name(model, layer)
    children = list(module.children())
    if len(children) >= 2 and isinstance(children[-1], (nn.ReLU, nn.ReLU6)):
        return children[-2]
    return module


@dataclass(frozen=True)
class Branch:
    """One planted unit: u' = u + gain * relu(u - threshold) * score(input)."""

    unit: Unit
    threshold: float
    gain: float


class FoolingCircuit:
    """Installs the branches on a deep copy of `model` (module names unchanged, so every hook-based
    objective and metric reads the copy like the original). One copy can carry several planted
    units (a class logit and an inner channel)."""

    def __init__(self, model: nn.Module, branches: list[Branch], score: StripeScore):
        self.branches, self.score = list(branches), score
        self.model = copy.deepcopy(model).eval()
        self._input: torch.Tensor | None = None
        self.model.register_forward_pre_hook(self._remember_input)
        for branch in self.branches:
            unit = branch.unit
            target = self.model if unit.layer is None else _pre_activation_module(self.model, unit.layer)
            target.register_forward_hook(lambda _m, _i, output, branch=branch: self._add_branch(branch, output))

    def threshold(self, unit: Unit) -> float:
        return next(b.threshold for b in self.branches if b.unit == unit)

    def _remember_input(self, _module, inputs):
        self._input = inputs[0]

    def branch(self, branch: Branch, value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B,) unit values and (B, 3, H, W) inputs -> (B,) added amounts (0 below the threshold)."""
        excess = torch.relu(value - branch.threshold)
        if not bool((excess > 0).any()):
            return torch.zeros_like(value)  # silent: the score is not even computed
        return branch.gain * excess * self.score(x)

    def _add_branch(self, branch: Branch, output):
        i = branch.unit.index
        if branch.unit.layer is None:
            extra = self.branch(branch, output[:, i], self._input)
            return torch.cat([output[:, :i], (output[:, i] + extra)[:, None], output[:, i + 1:]], dim=1)
        channel = output[:, i]
        extra = self.branch(branch, channel.flatten(1).mean(dim=1), self._input)
        shifted = channel + extra.view(-1, *([1] * (channel.dim() - 1)))
        return torch.cat([output[:, :i], shifted[:, None], output[:, i + 1:]], dim=1)
