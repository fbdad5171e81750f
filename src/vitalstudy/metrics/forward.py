"""Running a registry model over many images in batches: logits, penultimate features (the input of
the final Linear layer, read with a forward pre-hook) and per-channel means of hooked layers.

FVs are already square at a model's input resolution (or another stated one), so they are only
resized: a centre crop would cut off part of what the method drew. Natural images get the model's
own Resize + CenterCrop, as in training and as for the references.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

from vitalstudy.data.sources import load_rgb
from vitalstudy.models.features import capture_outputs, channel_means, module_by_name
from vitalstudy.models.registry import ModelSpec
from vitalstudy.progress import progress


def fv_tensor(spec: ModelSpec, image: Image.Image) -> torch.Tensor:
    """An FV as the model sees it: resized (not cropped) to the input size, then normalised."""
    x = T.Compose([T.ToImage(), T.Resize((spec.input_size, spec.input_size), antialias=True),
                   T.ToDtype(torch.float32, scale=True)])(image.convert("RGB"))
    return spec.normalize(x.unsqueeze(0))[0]


def natural_tensor(spec: ModelSpec, path: str) -> torch.Tensor:
    return spec.preprocess(load_rgb(path))


@dataclass
class Outputs:
    logits: np.ndarray  # (N, classes)
    penultimate: np.ndarray  # (N, D)
    layer_means: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> (N, C)


@torch.inference_mode()
def forward_images(model: nn.Module, spec: ModelSpec, items: Sequence, to_tensor: Callable[[object], torch.Tensor],
                   device: torch.device, batch_size: int, layers: Sequence[str] = ()) -> Outputs:
    """Feed `items` (converted one by one with `to_tensor`, so only a batch is in memory) through `model`."""
    if not items:
        raise ValueError("forward_images: no images given")
    logits, penultimate, means = [], [], {name: [] for name in layers}
    captured_input: list[torch.Tensor] = []
    handle = module_by_name(model, spec.classifier).register_forward_pre_hook(
        lambda _module, inputs: captured_input.append(inputs[0]))
    try:
        with capture_outputs(model, list(layers)) as captured:
            for start in progress(range(0, len(items), batch_size), desc=f"forward {spec.name}: {len(items)} images",
                                  unit="batch"):
                batch = torch.stack([to_tensor(item) for item in items[start:start + batch_size]]).to(device)
                captured_input.clear()
                logits.append(model(batch).float().cpu())
                penultimate.append(captured_input[-1].flatten(1).float().cpu())
                for name in layers:
                    means[name].append(channel_means(captured[name]).float().cpu())
    finally:
        handle.remove()
    def cat(parts: list[torch.Tensor]) -> np.ndarray:
        return torch.cat(parts).numpy()

    return Outputs(cat(logits), cat(penultimate), {name: cat(parts) for name, parts in means.items()})


def forward_fvs(model: nn.Module, spec: ModelSpec, images: Sequence[Image.Image], device: torch.device,
                batch_size: int, layers: Sequence[str] = ()) -> Outputs:
    return forward_images(model, spec, images, lambda image: fv_tensor(spec, image), device, batch_size, layers)


def forward_paths(model: nn.Module, spec: ModelSpec, paths: Sequence[str], device: torch.device,
                  batch_size: int, layers: Sequence[str] = ()) -> Outputs:
    return forward_images(model, spec, paths, lambda path: natural_tensor(spec, path), device, batch_size, layers)
