"""Image priors added to every method's objective (per image, so batch items stay independent)."""

from __future__ import annotations

import torch


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """DeepInversion's TV prior: non-squared norms of differences in four directions (incl. diagonals)."""
    d1 = x[:, :, :, :-1] - x[:, :, :, 1:]
    d2 = x[:, :, :-1, :] - x[:, :, 1:, :]
    d3 = x[:, :, 1:, :-1] - x[:, :, :-1, 1:]
    d4 = x[:, :, :-1, :-1] - x[:, :, 1:, 1:]
    return sum(d.flatten(1).norm(dim=1) for d in (d1, d2, d3, d4))


def l2_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1)
