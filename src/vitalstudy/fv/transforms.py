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


def maco_boxes(generator: torch.Generator, count: int, side: tuple[float, float] = (0.25, 0.30),
               centre_std: float = 0.15) -> torch.Tensor:
    """Horama's crop boxes (`optimization_step`): centres 0.5 + centre_std * N(0, 1) per axis, a
    square side ~ U(side) of the image side. Returns (count, 4) x0, y0, x1, y1 in image fractions.
    The draws (x centres, y centres, sides) come in Horama's order."""
    x0 = 0.5 + torch.randn(count, generator=generator) * centre_std
    y0 = 0.5 + torch.randn(count, generator=generator) * centre_std
    delta = torch.rand(count, generator=generator) * (side[1] - side[0]) + side[0]
    return torch.stack([x0 - delta * 0.5, y0 - delta * 0.5, x0 + delta * 0.5, y0 + delta * 0.5], dim=1)


def paper_boxes(generator: torch.Generator, count: int, mean: float = 0.25, std: float = 0.1,
                minimum: float = 0.1, centre_std: float = 0.15) -> torch.Tensor:
    """The paper's reading (App. A.1): side ~ N(mean, std) of the image, clipped to [minimum, 1]."""
    x0 = 0.5 + torch.randn(count, generator=generator) * centre_std
    y0 = 0.5 + torch.randn(count, generator=generator) * centre_std
    delta = (mean + std * torch.randn(count, generator=generator)).clamp(minimum, 1.0)
    return torch.stack([x0 - delta * 0.5, y0 - delta * 0.5, x0 + delta * 0.5, y0 + delta * 0.5], dim=1)


def _roi_align_axis(starts: torch.Tensor, ends: torch.Tensor, length: int, out: int) -> torch.Tensor:
    """One axis of torchvision's `roi_align` (aligned=False, adaptive sampling ratio) as a
    (boxes, out, length) matrix. `roi_align` is separable: a sample's bilinear weight is the product
    of its row and column weights, zero when either coordinate lies outside [-1, length], and a bin
    averages a grid x grid of samples, grid = ceil(box side / out)."""
    sides = (ends - starts).clamp(min=1.0)
    bins = sides / out
    grids = torch.ceil(sides / out).clamp(min=1)
    most = int(grids.max())
    sample = torch.arange(most, dtype=starts.dtype, device=starts.device)[None, None, :]
    bin_index = torch.arange(out, dtype=starts.dtype, device=starts.device)[None, :, None]
    # (boxes, out, grid) sample positions; samples beyond a box's own grid get weight 0
    positions = (starts[:, None, None] + bin_index * bins[:, None, None]
                 + (sample + 0.5) * (bins / grids)[:, None, None])
    used = (sample < grids[:, None, None]) & (positions >= -1.0) & (positions <= length)
    positions = positions.clamp(min=0.0)
    low = positions.floor().clamp(max=length - 1)
    edge = low >= length - 1
    fraction = torch.where(edge, torch.zeros_like(positions), positions - low)
    high = torch.where(edge, low, low + 1)
    share = used.to(starts.dtype) / grids[:, None, None]
    weights = torch.zeros(starts.shape[0], out, length, dtype=starts.dtype, device=starts.device)
    weights.scatter_add_(2, low.long(), (1 - fraction) * share)
    weights.scatter_add_(2, high.long(), fraction * share)
    return weights


def _antialiased_bicubic_axis(length: int, out: int, dtype, device) -> torch.Tensor:
    """`F.interpolate(bicubic, align_corners=True, antialias=True)` from length to out along one
    axis, as an (out, length) matrix: the resampling applied to the identity."""
    identity = torch.eye(length, dtype=dtype, device=device)[None, None]
    return F.interpolate(identity, size=(out, length), mode="bicubic", align_corners=True, antialias=True)[0, 0]


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Horama's resampling: `roi_align` of each box (fractions of the image side; row i crops
    image i) to twice the model input, then antialiased bicubic down to the input. Outside the
    image reads as 0 (the mean colour in model space).

    Both steps are separable linear maps, so each image's crop is rows @ image @ columns^T with
    (size, H) and (size, W) matrices composed from the two: the same numbers as calling
    `torchvision.ops.roi_align` and `F.interpolate` (tests/fv/test_equivalence.py), at a fraction
    of the cost of their CPU kernels, whose backward passes dominated a MACO or Fourier step."""
    boxes = boxes.to(images) * images.shape[2]
    height, width = images.shape[-2:]
    down = _antialiased_bicubic_axis(2 * size, size, images.dtype, images.device)
    rows = down @ _roi_align_axis(boxes[:, 1], boxes[:, 3], height, 2 * size)
    columns = down @ _roi_align_axis(boxes[:, 0], boxes[:, 2], width, 2 * size)
    return rows[:, None] @ images @ columns[:, None].transpose(-1, -2)


def maco_noise(generator: torch.Generator, shape, level: float) -> torch.Tensor:
    """Horama's noise, in model space: N(0, 1) * level + (U(0, 1) - 0.5) * level."""
    normal = torch.randn(shape, generator=generator) * level
    return normal + (torch.rand(shape, generator=generator) - 0.5) * level


SAMPLERS = ("horama", "paper")


class MacoViews:
    """MACO's per-step views (also the paper's Fourier): one random crop per image resampled to the
    model's input, plus noise. `sampler` horama (default: the reference implementation, PAPER_NOTES
    §2b): side U(0.25, 0.30), noise N(0,1)*a + U(-a/2, a/2) in model space, a = 0.05; paper: side
    N(0.25, 0.1) clipped to [min, 1], noise U(-a, a) in pixel units, a = 0.1 (space unstated in
    the paper). Both use Horama's centres and resampling."""

    def __init__(self, size: int, pixel_std: tuple[float, float, float], sampler: str = "horama",
                 noise: float | None = None, side: tuple[float, float] = (0.25, 0.30), mean: float = 0.25,
                 std: float = 0.1, minimum: float = 0.1, centre_std: float = 0.15):
        if sampler not in SAMPLERS:
            raise ValueError(f"crop sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
        self.size, self.sampler = size, sampler
        self.noise = (0.05 if sampler == "horama" else 0.1) if noise is None else float(noise)
        self.pixel_std = torch.tensor(pixel_std).view(3, 1, 1)
        self.side, self.mean, self.std, self.minimum, self.centre_std = tuple(side), mean, std, minimum, centre_std

    def boxes(self, generator: torch.Generator) -> torch.Tensor:
        if self.sampler == "horama":
            return maco_boxes(generator, 1, self.side, self.centre_std)
        return paper_boxes(generator, 1, self.mean, self.std, self.minimum, self.centre_std)

    def noise_for(self, generator: torch.Generator) -> torch.Tensor:
        shape = (3, self.size, self.size)
        if self.sampler == "horama":
            return maco_noise(generator, shape, self.noise)
        return (torch.rand(shape, generator=generator) * 2 - 1) * self.noise / self.pixel_std

    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        boxes = torch.cat([self.boxes(g) for g in generators])
        crops = crop_and_resize(x, boxes, self.size)
        return crops + torch.stack([self.noise_for(g) for g in generators]).to(crops)

    def describe(self) -> dict:
        crops = {"side_uniform": list(self.side)} if self.sampler == "horama" else \
            {"side_normal": [self.mean, self.std], "min": self.minimum}
        return {"sampler": self.sampler, "noise": self.noise, "centre_std": self.centre_std, **crops,
                "resampling": "roi_align to 2x input, antialiased bicubic to input"}


def maco_views(cfg: dict, spec) -> MacoViews:
    """MacoViews from a method's config section (the `views` keys shared by MACO and Fourier)."""
    views = cfg["views"]
    return MacoViews(spec.input_size, spec.std, sampler=views["sampler"], noise=views["noise"], side=tuple(views["side"]),
                     mean=views["paper_mean"], std=views["paper_std"], minimum=views["paper_min"],
                     centre_std=views["centre_std"])


class RandomFlip:
    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        flips = [bool(torch.rand((), generator=g) < 0.5) for g in generators]
        return torch.stack([image.flip(-1) if f else image for image, f in zip(x, flips)])
