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


_CLAMPS = {nn.ReLU: (0.0, None), nn.ReLU6: (0.0, 6.0)}


@contextmanager
def capture_pre_activation(model: nn.Module, name: str):
    """Within the block, `captured[name]` holds the input of the layer's closing ReLU when the layer
    ends in one (its output is exactly that input clamped), else the layer's output.

    Why: maximising a ReLU's output gives no gradient where the unit is off at every position, which
    is common for late channels on a start image; the pre-activation has the same direction of
    increase and always a gradient (Lucid's `_pre_relu` objectives)."""
    layer = module_by_name(model, name)
    captured: dict[str, torch.Tensor] = {}
    last: dict[str, object] = {}

    def relu_input(module, inputs):  # an in-place ReLU overwrites its input: keep a copy
        last["pre"] = inputs[0].clone() if getattr(module, "inplace", False) else inputs[0]

    def leaf_called(module, _inputs, _output):
        last["module"] = module

    def layer_hook(_module, _inputs, output):
        bounds = _CLAMPS.get(type(last.get("module")))
        pre = last.get("pre")
        closing = (bounds is not None and isinstance(pre, torch.Tensor) and pre.shape == output.shape
                   and torch.equal(pre.detach().clamp(*bounds), output.detach()))
        captured[name] = pre if closing else output

    leaves = [m for m in layer.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_pre_hook(relu_input) for m in leaves if type(m) in _CLAMPS]
    handles += [m.register_forward_hook(leaf_called) for m in leaves] + [layer.register_forward_hook(layer_hook)]
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
