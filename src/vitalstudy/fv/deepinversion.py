"""DeepInversion (Yin et al. 2020) as NVlabs' `deepinversion.py` computes it (PAPER_NOTES §2b).

Each target has its own batch of `images_per_target` images (the paper's bs 64), and the loss of
that batch is NVlabs' loss of a whole batch:

    CE(outputs, targets)  (mean over the batch)
    + r_feature * sum_l m_l (||var_l - running_var_l||_2 + ||mean_l - running_mean_l||_2)
        (batch statistics over all images of the batch at every BatchNorm input; m_1 = first-BN multiplier)
    + tv_l2 * (||d1|| + ||d2|| + ||d3|| + ||d4||)  (over the whole batch tensor)
    + l2 * mean_i ||x_i||_2

on the jittered, flipped input (one roll offset and one flip per batch, as NVlabs draws them).
Targets optimised side by side each keep their own batch: statistics, means and norms are taken
per target batch, so one target's images never influence another's. The loop sums the per-image
shares (each image carries 1/bs of its batch's loss), which is exactly the sum of the batch losses.
The first image of a target's batch is saved.

`low_resolution_steps` > 0 is NVlabs' multi-resolution setting (setting 0: 2k steps at 112, then
1k at 224): that many steps first on the image average-pooled by `low_resolution_factor`, with the
jitter divided by the factor, then `steps` at full size; Adam and the warm-up + cosine schedule
start afresh at the switch, as NVlabs re-creates them per resolution. 0 is its setting 1, the paper's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.pixels import NormalisedPixels
from vitalstudy.fv.loop import Stage
from vitalstudy.fv.plan import Plan, loop_settings


def bn_statistics_loss(features: list[torch.Tensor], bns: list[nn.BatchNorm2d], first_multiplier: float) -> torch.Tensor:
    """NVlabs' r_feature of one batch: batch mean and (biased) variance per channel at each BN input."""
    total = features[0].new_zeros(())
    for i, (bn, f) in enumerate(zip(bns, features)):
        flat = f.transpose(0, 1).flatten(1)  # (C, batch * positions)
        term = torch.norm(bn.running_var - flat.var(dim=1, unbiased=False), 2) + \
            torch.norm(bn.running_mean - flat.mean(dim=1), 2)
        total = total + (first_multiplier if i == 0 else 1.0) * term
    return total


def batch_total_variation(x: torch.Tensor) -> torch.Tensor:
    """NVlabs' `loss_var_l2`: non-squared norms of the four neighbour differences over the whole batch."""
    d1 = x[:, :, :, :-1] - x[:, :, :, 1:]
    d2 = x[:, :, :-1, :] - x[:, :, 1:, :]
    d3 = x[:, :, 1:, :-1] - x[:, :, :-1, 1:]
    d4 = x[:, :, :-1, :-1] - x[:, :, 1:, 1:]
    return torch.norm(d1) + torch.norm(d2) + torch.norm(d3) + torch.norm(d4)


class DeepInversionObjective:
    """(targets * images_per_target, 3, H, W) -> per-image shares of each target batch's loss."""

    def __init__(self, model: nn.Module, class_indices: list[int], images_per_target: int, bn_weight: float,
                 first_bn_multiplier: float, tv_weight: float, l2_weight: float, main_weight: float = 1.0):
        self.model, self.per_target = model, images_per_target
        self.labels = torch.tensor(class_indices).repeat_interleave(images_per_target)
        self.bn_weight, self.first_multiplier = bn_weight, first_bn_multiplier
        self.tv_weight, self.l2_weight, self.main_weight = tv_weight, l2_weight, main_weight
        self.bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]

    def batch_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each term of each target batch's loss, (targets,) tensors."""
        inputs: list[torch.Tensor] = []
        handles = [bn.register_forward_hook(lambda _m, args, _out: inputs.append(args[0])) for bn in self.bns]
        try:
            logits = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        labels = self.labels.to(x.device)
        terms = {"cross_entropy": [], "bn": [], "tv": [], "l2": []}
        for rows in torch.arange(x.shape[0], device=x.device).split(self.per_target):
            terms["cross_entropy"].append(F.cross_entropy(logits[rows], labels[rows]))
            terms["bn"].append(bn_statistics_loss([f[rows] for f in inputs], self.bns, self.first_multiplier))
            terms["tv"].append(batch_total_variation(x[rows]))
            terms["l2"].append(torch.norm(x[rows].flatten(1), dim=1).mean())
        return {k: torch.stack(v) for k, v in terms.items()}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t = self.batch_losses(x)
        total = (self.main_weight * t["cross_entropy"] + self.bn_weight * t["bn"] + self.tv_weight * t["tv"]
                 + self.l2_weight * t["l2"])
        return total.repeat_interleave(self.per_target) / self.per_target


class BatchJitterFlip:
    """NVlabs' augmentation: one random roll of up to ±`pixels` per axis and one random horizontal
    flip (p = 0.5) per target batch, drawn from the generator of the batch's first image."""

    def __init__(self, pixels: int, flip: bool, images_per_target: int):
        self.pixels, self.flip, self.per_target = pixels, flip, images_per_target

    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        out = []
        for g, batch in zip(generators[:: self.per_target], x.split(self.per_target)):
            dy, dx = torch.randint(-self.pixels, self.pixels + 1, (2,), generator=g).tolist()
            batch = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
            if self.flip and float(torch.rand((), generator=g)) > 0.5:
                batch = batch.flip(3)
            out.append(batch)
        return torch.cat(out)


class AveragePool:
    """NVlabs' `pooling_function` of the low-resolution stage: a k x k average pool of the input."""

    def __init__(self, factor: int):
        self.factor = factor

    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=self.factor)


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
        low_steps, factor = int(cfg["low_resolution_steps"]), int(cfg["low_resolution_factor"])
        # The priors belong to the batch loss (NVlabs), not to the loop's per-image priors.
        settings = loop_settings(cfg, schedule="cosine", tv_weight=0.0, l2_weight=0.0,
                                 steps=low_steps + int(cfg["steps"]))
        objective = DeepInversionObjective(
            self.model, [t.class_index for t in targets], per_target, float(cfg["r_feature"]),
            float(cfg["first_bn_multiplier"]), float(cfg["tv_weight"]), float(cfg["l2_weight"]),
            float(cfg["main_loss_multiplier"]))
        jitter, flip = int(cfg["jitter"]), bool(cfg["flip"])
        hyper = {"parameterisation": "normalised pixels, N(0,1) init, clamped to [0,1] pixels",
                 "images_per_target": per_target, "r_feature": objective.bn_weight,
                 "first_bn_multiplier": objective.first_multiplier, "tv_l2": objective.tv_weight,
                 "l2": objective.l2_weight, "main_loss_multiplier": objective.main_weight,
                 "loss": "NVlabs batch loss (CE mean, BN and TV over the target's batch)",
                 "jitter": jitter, "flip": flip, "loop": settings.as_dict()}
        full_size = [BatchJitterFlip(jitter, flip, per_target)]
        stages = None
        if low_steps:
            hyper["multi_resolution"] = {"low_resolution_steps": low_steps, "factor": factor,
                                         "low_resolution_jitter": jitter // factor, "full_resolution_steps": int(cfg["steps"])}
            stages = [Stage(low_steps, [AveragePool(factor), BatchJitterFlip(jitter // factor, flip, per_target)]),
                      Stage(int(cfg["steps"]), full_size)]
        return Plan(NormalisedPixels(self.spec, self.spec.input_size), full_size, objective, settings, hyper,
                    self.spec.input_size, images_per_target=per_target, stages=stages)
