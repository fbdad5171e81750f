"""Raw-pixel parameterisation and roll jitter: what the authors' VITAL code optimises."""

from __future__ import annotations

import torch

from vitalstudy.models.preprocessing import denormalize
from vitalstudy.models.registry import ModelSpec


class NormalisedPixels:
    """Pixels in the model's normalised input space, initialised with N(0, 1) noise, clamped after
    each step to the values that denormalise into [0, 1] (PAPER_NOTES §1)."""

    def __init__(self, spec: ModelSpec, size: int):
        self.spec, self.size = spec, size
        self.low = torch.tensor([(0 - m) / s for m, s in zip(spec.mean, spec.std)]).view(1, 3, 1, 1)
        self.high = torch.tensor([(1 - m) / s for m, s in zip(spec.mean, spec.std)]).view(1, 3, 1, 1)

    def init(self, generators: list[torch.Generator]) -> torch.Tensor:
        return torch.stack([torch.randn(3, self.size, self.size, generator=g) for g in generators])

    def images(self, params: torch.Tensor) -> torch.Tensor:
        return denormalize(self.spec, params)

    def project_(self, params: torch.Tensor) -> None:
        params.copy_(torch.maximum(torch.minimum(params, self.high.to(params.device)), self.low.to(params.device)))


class RollJitter:
    """Roll each image by its own random offset of up to ±`pixels` per axis."""

    def __init__(self, pixels: int):
        self.pixels = pixels

    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        if not self.pixels:
            return x
        shifted = []
        for image, g in zip(x, generators):
            dy, dx = torch.randint(-self.pixels, self.pixels + 1, (2,), generator=g).tolist()
            shifted.append(torch.roll(image, shifts=(dy, dx), dims=(1, 2)))
        return torch.stack(shifted)
