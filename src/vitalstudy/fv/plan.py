"""What a method hands to the shared loop for one batch of targets."""

from __future__ import annotations

from dataclasses import dataclass

from vitalstudy.fv.loop import Checkpointer, LoopResult, LoopSettings, Stage, optimise


@dataclass
class Plan:
    parameterisation: object
    transforms: list
    objective: object
    settings: LoopSettings
    hyperparameters: dict
    resolution: int
    images_per_target: int = 1  # DeepInversion optimises a batch of images per target; the first is saved
    image_prior: object | None = None  # (B, 3, H, W) untransformed model input -> (B,) losses, once per step
    stages: list[Stage] | None = None  # runs with their own transforms and optimiser; None = one run of `transforms`

    def optimise(self, to_model_input, generators, device, checkpoint: Checkpointer | None = None,
                 bar=None) -> LoopResult:
        """The shared loop on this plan, every part of it (image prior, stages) passed on, so no
        caller can leave one out."""
        return optimise(self.parameterisation, self.objective, to_model_input, self.transforms, self.settings,
                        generators, device, checkpoint, bar=bar, image_prior=self.image_prior, stages=self.stages)


def loop_settings(cfg: dict, **fixed) -> LoopSettings:
    """LoopSettings from a method's config section (keys named as in LoopSettings)."""
    keys = {"steps", "lr", "betas", "optimizer", "warmup", "schedule", "tv_weight", "l2_weight",
            "views_per_step", "checkpoint_every", "alpha_percentile"}
    values = {k: v for k, v in cfg.items() if k in keys}
    values.update(fixed)
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return LoopSettings(**values)
