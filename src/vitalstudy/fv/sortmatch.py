"""The sort-matching (SM) loss of VITAL (PAPER_NOTES §1, the paper's Alg. 1).

Per channel, the synthetic image's values are compared with a *prototype quantile* vector: the
reference images' values sorted per channel and averaged over the references. Gathering the
prototype at the synthetic image's ranks and taking the MSE equals comparing the sorted synthetic
values with the prototype position by position, which is what is computed here (one sort instead
of argsort-of-argsort plus a gather); gradients flow through the sorted values to the positions
they came from, exactly as through the gather formulation (the sort indices are constants).
"""

from __future__ import annotations

import torch


def as_channels_by_positions(activation: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) CNN maps -> (N, C, H*W); (N, tokens, D) ViT tokens -> (N, D, tokens)."""
    if activation.dim() == 4:
        return activation.flatten(2)
    if activation.dim() == 3:
        return activation.transpose(1, 2)
    raise ValueError(f"cannot match an activation of shape {tuple(activation.shape)}")


def prototype(reference_features: torch.Tensor) -> torch.Tensor:
    """(R, C, P) features of R reference images -> (C, P) per-channel sorted values averaged over R."""
    return reference_features.sort(dim=-1).values.mean(dim=0)


def sort_match_loss(features: torch.Tensor, prototypes: torch.Tensor,
                    channel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, P) synthetic features and (B, C, P) prototypes (one per target) -> (B,) losses.
    `channel_weights` (B, C): the authors' relevance-based VITAL multiplies each channel's squared
    error by the channel's importance before the mean."""
    if features.shape != prototypes.shape:
        raise ValueError(f"features {tuple(features.shape)} and prototypes {tuple(prototypes.shape)} differ")
    error = (features.sort(dim=-1).values - prototypes).pow(2)
    if channel_weights is not None:
        error = error * channel_weights[:, :, None].to(error)
    return error.mean(dim=(1, 2))
