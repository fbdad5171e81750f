"""Reading intermediate activations with forward hooks, and reducing them per channel.

CNN layers give (N, C, H, W) maps; ViT blocks give (N, tokens, D) with the embedding dimensions as
channels. `channel_means` is the spatial mean per channel for either layout.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from vitalstudy.errors import ConfigError


def module_by_name(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        raise ConfigError(f"layer {name!r} does not exist in {type(model).__name__}")
    return modules[name]


@contextmanager
def capture_outputs(model: nn.Module, names: list[str] | tuple[str, ...]):
    """Within the block, `captured[name]` holds the latest output of each named module."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        def hook(_module, _inputs, output, name=name):
            captured[name] = output
        handles.append(module_by_name(model, name).register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def channel_means(activation: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) or (N, tokens, D) -> (N, C) spatial/token means."""
    if activation.dim() == 4:
        return activation.mean(dim=(2, 3))
    if activation.dim() == 3:
        return activation.mean(dim=1)
    if activation.dim() == 2:
        return activation
    raise ValueError(f"cannot reduce an activation of shape {tuple(activation.shape)} per channel")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but no CUDA GPU is available")
    return torch.device(name)
