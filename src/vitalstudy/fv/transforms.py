"""Random image transforms for the baselines, each image drawing from its own generator.

Inputs are model-space tensors (B, 3, H, W); outputs have the model's input size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


class LucidTransforms:
    """Lucid's standard transforms as one affine warp per image: pad 12 (mean colour), jitter 8,
    scale 0.9-1.1, rotate ±10°, jitter 4; then centre crop to the model's input size."""

    def __init__(self, size: int, pad: int = 12, jitter: int = 8, scale: tuple[float, float] = (0.9, 1.1),
                 rotate: float = 10.0, jitter_after: int = 4):
        self.size, self.pad, self.jitter, self.scale = size, pad, jitter, scale
        self.rotate, self.jitter_after = rotate, jitter_after

    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        x = F.pad(x, [self.pad] * 4)  # zero in model space = the normalisation mean colour
        side = x.shape[-1]
        thetas = []
        for g in generators:
            s = _uniform(g, *self.scale)
            a = math.radians(_uniform(g, -self.rotate, self.rotate))
            shift = [(torch.randint(-self.jitter, self.jitter + 1, (), generator=g).item()
                      + torch.randint(-self.jitter_after, self.jitter_after + 1, (), generator=g).item()) * 2 / side
                     for _ in range(2)]
            thetas.append([[math.cos(a) / s, -math.sin(a) / s, shift[0]], [math.sin(a) / s, math.cos(a) / s, shift[1]]])
        grid = F.affine_grid(torch.tensor(thetas, dtype=x.dtype, device=x.device), list(x.shape), align_corners=False)
        warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        start = (side - self.size) // 2
        return warped[:, :, start:start + self.size, start:start + self.size]


class NoiseAndCrops:
    """MACO's transforms: a square crop whose side is a fraction ~ N(mean, std) of the image (clipped
    to [min, 1]) around a centre ~ N(0.5, centre_std) per axis, resized to the model's input size
    (parts outside the image read as the mean colour), then uniform noise U(-a, a) in pixel units."""

    def __init__(self, size: int, pixel_std: tuple[float, float, float], noise: float = 0.1,
                 crop_mean: float = 0.25, crop_std: float = 0.1, crop_min: float = 0.1, centre_std: float = 0.15):
        self.size, self.noise = size, noise
        self.scale = torch.tensor(pixel_std).view(1, 3, 1, 1)
        self.crop_mean, self.crop_std, self.crop_min, self.centre_std = crop_mean, crop_std, crop_min, centre_std

    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        thetas, noises = [], []
        for g in generators:
            fraction = min(1.0, max(self.crop_min, self.crop_mean + self.crop_std * float(torch.randn((), generator=g))))
            centre = (self.centre_std * torch.randn(2, generator=g) * 2).tolist()  # [-1, 1] grid units
            thetas.append([[fraction, 0.0, centre[0]], [0.0, fraction, centre[1]]])
            noises.append((torch.rand((3, self.size, self.size), generator=g) * 2 - 1) * self.noise)
        theta = torch.tensor(thetas, dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta, [x.shape[0], 3, self.size, self.size], align_corners=False)
        crops = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return crops + (torch.stack(noises) / self.scale).to(crops)


class RandomFlip:
    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        flips = [bool(torch.rand((), generator=g) < 0.5) for g in generators]
        return torch.stack([image.flip(-1) if f else image for image, f in zip(x, flips)])
