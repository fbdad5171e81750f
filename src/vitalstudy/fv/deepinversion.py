"""DeepInversion (Yin et al. 2020): images that make the classifier predict the class while the
statistics of their features at every BatchNorm input match the BN running statistics
(PAPER_NOTES §2). BN statistics are taken over a batch of images per target (`images_per_target`,
the batch size the paper varies), and each target's batch is its own group, so targets optimised
side by side do not influence one another. The first image of a target's batch is saved."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitalstudy.data.classes import imagenet_classes
from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.pixels import NormalisedPixels, RollJitter
from vitalstudy.fv.plan import Plan, loop_settings
from vitalstudy.fv.transforms import RandomFlip


class DeepInversionObjective:
    def __init__(self, model: nn.Module, class_indices: list[int], images_per_target: int,
                 bn_weight: float, first_bn_multiplier: float):
        self.model, self.per_target = model, images_per_target
        self.labels = torch.tensor(class_indices).repeat_interleave(images_per_target)
        self.bn_weight, self.first_multiplier = bn_weight, first_bn_multiplier
        self.bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        inputs: list[torch.Tensor] = []
        handles = [bn.register_forward_hook(lambda _m, args, _out: inputs.append(args[0])) for bn in self.bns]
        try:
            logits = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        groups = x.shape[0] // self.per_target
        bn_loss = torch.zeros(groups, device=x.device)
        for i, (bn, feature) in enumerate(zip(self.bns, inputs)):
            f = feature.reshape(groups, self.per_target, *feature.shape[1:]).transpose(1, 2).flatten(2)  # (G, C, n)
            mean, var = f.mean(dim=2), f.var(dim=2, unbiased=False)
            term = (mean - bn.running_mean).norm(dim=1) + (var - bn.running_var).norm(dim=1)
            bn_loss = bn_loss + (self.first_multiplier if i == 0 else 1.0) * term
        cross_entropy = F.cross_entropy(logits, self.labels.to(x.device), reduction="none")
        # Each image carries its own cross-entropy and an equal share of its group's BN loss.
        return cross_entropy + self.bn_weight * bn_loss.repeat_interleave(self.per_target) / self.per_target


class DeepInversionMethod:
    name = "deepinversion"

    def __init__(self, name, spec, model, config: dict, run_dir, device):
        if not spec.has_batchnorm:
            raise VitalStudyError(f"DeepInversion needs BatchNorm statistics and {spec.name} has no BatchNorm "
                                  f"layer (the paper marks DeepInversion n/a for ViT and ConvNeXt)")
        self.spec, self.model, self.config = spec, model, config
        self.images_per_target = int(config["images_per_target"])

    def group_key(self, target) -> str:
        if target.kind != "class":
            raise VitalStudyError(f"DeepInversion visualises classes only; {target.id} is an inner neuron")
        return "class"

    def plan(self, targets, references) -> Plan:
        cfg = self.config
        per_target = self.images_per_target
        settings = loop_settings(cfg, schedule=cfg["schedule"])
        classes = imagenet_classes()
        objective = DeepInversionObjective(self.model, [classes.index(t.wnid) for t in targets], per_target,
                                           float(cfg["bn_weight"]), float(cfg["first_bn_multiplier"]))
        transforms = [RollJitter(int(cfg["jitter"]))] + ([RandomFlip()] if cfg["flip"] else [])
        hyper = {"parameterisation": "normalised pixels, N(0,1) init, clamped to [0,1] pixels",
                 "images_per_target": per_target, "bn_weight": objective.bn_weight,
                 "first_bn_multiplier": objective.first_multiplier, "jitter": cfg["jitter"],
                 "flip": cfg["flip"], "loop": settings.as_dict()}
        return Plan(NormalisedPixels(self.spec, self.spec.input_size), transforms, objective, settings, hyper,
                    self.spec.input_size, images_per_target=per_target)
