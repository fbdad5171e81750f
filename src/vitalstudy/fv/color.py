"""Lucid's colour decorrelation: Fourier-based methods optimise in a decorrelated colour space and
map back with the square root of ImageNet's colour covariance (PAPER_NOTES §2)."""

from __future__ import annotations

import torch

_SQRT_COLOR_COVARIANCE = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MATRIX = _SQRT_COLOR_COVARIANCE / _SQRT_COLOR_COVARIANCE.norm(dim=0).max()


def recorrelate(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) decorrelated -> RGB-correlated values."""
    return torch.einsum("ij,bjhw->bihw", COLOR_MATRIX.to(x), x)


def decorrelate(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(COLOR_MATRIX).to(x), x)
