"""How each model is fed: resize + centre crop for natural images, per-model normalisation."""

from __future__ import annotations

from functools import lru_cache

import torch
from PIL import Image
from torchvision.transforms import v2 as T

from vitalstudy.models.registry import ModelSpec


@lru_cache(maxsize=None)
def natural_image_transform(spec: ModelSpec) -> T.Compose:
    """PIL RGB image -> normalised (3, S, S) tensor: Resize(resize_size) + CenterCrop(input_size)."""
    return T.Compose([
        T.ToImage(),
        T.Resize(spec.resize_size, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
        T.CenterCrop(spec.input_size),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(spec.mean, spec.std),
    ])


def preprocess(spec: ModelSpec, image: Image.Image) -> torch.Tensor:
    return natural_image_transform(spec)(image.convert("RGB"))


def normalize(spec: ModelSpec, x01: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] (N, 3, H, W) -> the model's input space."""
    mean = torch.tensor(spec.mean, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    return (x01 - mean) / std


def denormalize(spec: ModelSpec, x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * std + mean
