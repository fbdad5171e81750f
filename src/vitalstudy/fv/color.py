"""Colour decorrelation of the Fourier-based methods: they optimise in a decorrelated colour space
and map back with a square root of ImageNet's colour covariance (PAPER_NOTES §2, §2b).

Two normalisations of that matrix are in use: Lucid's (divided by its largest column norm) and
Horama's (the constant Horama's MACO/Fourier code applies; the same matrix up to a 0.6 % scale).
Each method names the one its reference uses."""

from __future__ import annotations

import torch

_SQRT_COLOR_COVARIANCE = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
LUCID_COLOR_MATRIX = _SQRT_COLOR_COVARIANCE / _SQRT_COLOR_COVARIANCE.norm(dim=0).max()
# Horama applies `pixels_flat @ M`; stored here transposed, as the matrix that maps (3,) -> (3,).
HORAMA_COLOR_MATRIX = torch.tensor([[0.56282854, 0.58447580, 0.58447580],
                                    [0.19482528, 0.00000000, -0.19482528],
                                    [0.04329450, -0.10823626, 0.06494176]]).T


def recorrelate(x: torch.Tensor, matrix: torch.Tensor = LUCID_COLOR_MATRIX) -> torch.Tensor:
    """(B, 3, H, W) decorrelated -> RGB-correlated values."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(x), x)


def decorrelate(x: torch.Tensor, matrix: torch.Tensor = LUCID_COLOR_MATRIX) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(matrix).to(x), x)
