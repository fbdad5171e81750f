"""Relevance of intermediate features for a target, from zennit (PAPER_NOTES §1, App. B.2/B.3).

Attribution runs as zennit's modified gradient: the model is put in a composite context, the
target's initial relevance is fed as the output gradient, and each hooked layer's output retains
its gradient, which then *is* that layer's relevance. Starts:
- class neuron: the class logit (one-hot x logit);
- inner neuron (a channel at a layer): that channel's activation map, other channels zero;
- concept direction (a vector at a layer): the vector placed at the position whose feature vector
  is most cosine-similar to it.

The registry says which composite is faithful for each model; models with none (LayerNorm and
attention: ViT, ConvNeXt) are refused with the registry's reason.

Max-pools (ResNet's and DenseNet's stems): the authors' LRP replaces a max-pool by a 2x2 average
pool for the relevance pass (their `RelevancePropagationMaxPool2d`, mode "avg", stabiliser 1e-5):
the forward activations stay the max-pool's, relevance flows back as through an average pool of
the max-pool's input. `AveragePoolSubstitute` is that rule as a zennit hook, mapped onto every
`MaxPool2d` (`stem_pool: average`, the default); `stem_pool: max` keeps zennit's plain gradient
(all relevance of a window to its maximum).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from zennit.core import Hook

from vitalstudy.errors import VitalStudyError
from vitalstudy.models.features import capture_outputs
from vitalstudy.models.registry import ModelSpec

ATTRIBUTIONS = ("lrp", "guided_backprop")
STEM_POOLS = ("average", "max")


class AveragePoolSubstitute(Hook):
    """zennit rule for a max-pool: z-rule through a 2x2 average pool of the max-pool's input
    (R_in = a * d/da[avgpool2(a) + eps] . R_out / (avgpool2(a) + eps)), as the authors' LRP."""

    def __init__(self, stabilizer: float = 1e-5):
        super().__init__()
        self.stabilizer = stabilizer

    def forward(self, module, input, output):
        self.stored_tensors["input"] = input

    def backward(self, module, grad_input, grad_output):
        a = self.stored_tensors["input"][0].clone().requires_grad_()
        with torch.enable_grad():
            z = F.avg_pool2d(a, kernel_size=2) + self.stabilizer
        (c,) = torch.autograd.grad(z, a, grad_outputs=grad_output[0] / z)
        return (a * c,)

    def copy(self):
        return AveragePoolSubstitute(self.stabilizer)


@dataclass(frozen=True)
class Start:
    """Where relevance starts: `kind` class | channel | direction, per image of the batch."""

    kind: str
    layer: str | None = None  # channel/direction: the target's layer
    indices: tuple[int, ...] = ()  # class index or channel per image
    directions: torch.Tensor | None = None  # (B, C) concept directions


def _efficientnet_lite_canonizers(model: nn.Module) -> list:
    """BatchNorm merged into the convolution before it, and residual additions as zennit `Sum`
    modules (so the Norm rule splits relevance between the two branches, as for ResNets)."""
    from zennit.canonizers import AttributeCanonizer, NamedMergeBatchNorm
    from zennit.layer import Sum

    names = dict(model.named_modules())
    pairs = [(("stem.0",), "stem.1"), (("head.0",), "head.1")]
    for name, module in model.named_modules():
        if type(module).__name__ == "MBConvBlock":
            for conv, bn in (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")):
                if f"{name}.{conv}" in names:
                    pairs.append(((f"{name}.{conv}",), f"{name}.{bn}"))

    def forward(self, inputs, drop_connect_rate=None):
        x = inputs
        if self._block_args.expand_ratio != 1:
            x = self._swish(self._bn0(self._expand_conv(inputs)))
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        args = self._block_args
        if self.id_skip and args.stride in (1, [1]) and args.input_filters == args.output_filters:
            x = self.canonizer_sum(torch.stack([inputs, x], dim=-1))
        return x

    def attribute_map(_name, module):
        if type(module).__name__ == "MBConvBlock":
            return {"forward": forward.__get__(module), "canonizer_sum": Sum()}
        return None

    return [NamedMergeBatchNorm(pairs), AttributeCanonizer(attribute_map)]


def make_composite(spec: ModelSpec, model: nn.Module, attribution: str, stem_pool: str = "average"):
    """The zennit composite (with canonizers) that the registry names for `spec`."""
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import (EpsilonPlusFlat, GuidedBackprop, LayerMapComposite, MixedComposite,
                                   NameMapComposite)
    from zennit.rules import ReLUGuidedBackprop, WSquare
    from zennit.torchvision import ResNetCanonizer

    if attribution not in ATTRIBUTIONS:
        raise VitalStudyError(f"attribution {attribution!r} unknown; choose one of {', '.join(ATTRIBUTIONS)}")
    if stem_pool not in STEM_POOLS:
        raise VitalStudyError(f"stem_pool {stem_pool!r} unknown; choose one of {', '.join(STEM_POOLS)}")
    if spec.relevance.composite is None:
        raise VitalStudyError(f"relevance-based VITAL is not available for {spec.name}: {spec.relevance.reason}; "
                              f"use method 'vital' (activations only)")
    canonizers = {
        "resnet": lambda: [ResNetCanonizer()],
        "efficientnet_lite": lambda: _efficientnet_lite_canonizers(model),
        "densenet": lambda: [SequentialMergeBatchNorm()],
    }[spec.relevance.canonizer]()
    if attribution == "guided_backprop":
        return GuidedBackprop(layer_map=[(nn.ReLU6, ReLUGuidedBackprop())], canonizers=canonizers)
    # Biases are left out of the rules (as in the z+ rule the authors use), so no relevance is
    # absorbed by them and it is conserved from layer to layer.
    lrp = EpsilonPlusFlat(zero_params=["bias"])
    pools = [LayerMapComposite([(nn.MaxPool2d, AveragePoolSubstitute())])] if stem_pool == "average" else []
    if spec.relevance.canonizer != "efficientnet_lite":
        return MixedComposite([*pools, lrp], canonizers=canonizers)
    # A depthwise convolution sees 3x3 (or 5x5) inputs of one channel, most of them zero after
    # ReLU6: units driven by their BN-merged bias alone have no positive contribution for z+ to
    # redistribute and their relevance would vanish. WSquare redistributes by the squared weights
    # (independent of the input) and conserves it.
    depthwise = tuple(name for name, m in model.named_modules() if name.endswith("_depthwise_conv"))
    return MixedComposite([NameMapComposite([(depthwise, WSquare(zero_params=["bias"]))]), *pools, lrp],
                          canonizers=canonizers)


class RelevanceMaps:
    """Relevance at several layers for a batch of images and their starts."""

    def __init__(self, spec: ModelSpec, model: nn.Module, attribution: str = "lrp", stem_pool: str = "average"):
        self.spec, self.model, self.attribution = spec, model, attribution
        self.composite = make_composite(spec, model, attribution, stem_pool)

    def __call__(self, x: torch.Tensor, layers: list[str], start: Start) -> dict[str, torch.Tensor]:
        names = list(dict.fromkeys([*layers, *([start.layer] if start.layer else [])]))
        with torch.enable_grad(), self.composite.context(self.model) as model, capture_outputs(model, names) as acts:
            x = x.detach().requires_grad_(True)
            logits = model(x)
            for name in layers:
                acts[name].retain_grad()
            output, seed = self._seed(logits, acts, start)
            torch.autograd.backward(output, seed)
            maps = {name: acts[name].grad.detach() for name in layers}
        if self.attribution == "guided_backprop":  # guided gradient x activation, as relevance
            maps = {name: maps[name] * acts[name].detach() for name in layers}
        return maps

    @staticmethod
    def _seed(logits, acts, start: Start):
        if start.kind == "class":
            index = torch.tensor(start.indices, device=logits.device)
            return logits, F.one_hot(index, logits.shape[1]).to(logits.dtype) * logits.detach()
        target = acts[start.layer]
        if start.kind == "channel":
            mask = torch.zeros_like(target)
            for i, channel in enumerate(start.indices):
                mask[i, channel] = 1
            return target, mask * target.detach()
        if start.kind == "direction":  # App. B.3: the direction at the best-matching position
            feats = target.detach().flatten(2)  # (B, C, P)
            direction = start.directions.to(feats)
            cosine = F.cosine_similarity(feats, direction[:, :, None], dim=1)  # (B, P)
            seed = torch.zeros_like(feats)
            best = cosine.argmax(dim=1)
            seed[torch.arange(len(best)), :, best] = direction
            return target, seed.view_as(target)
        raise VitalStudyError(f"unknown relevance start {start.kind!r}")


def minmax(x: torch.Tensor, dim) -> torch.Tensor:
    """(x - min) / (max - min + 1e-6) over `dim`, the authors' normalisation of relevance maps and importances."""
    shifted = x - x.amin(dim=dim, keepdim=True)
    return shifted / (shifted.amax(dim=dim, keepdim=True) + 1e-6)
