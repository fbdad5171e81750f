"""Activation maximisation, the objective of the Fourier and MACO baselines: a class logit, or
the spatial mean of one channel at a layer (inner neurons), taken before the layer's closing ReLU
when it has one (see `capture_pre_activation`)."""

from __future__ import annotations

import torch

from vitalstudy.errors import VitalStudyError
from vitalstudy.models.features import capture_pre_activation, channel_means
from vitalstudy.references.targets import Target


class ActivationObjective:
    """Loss = minus the target's activation, per image (one target per batch item)."""

    def __init__(self, model, targets: list[Target]):
        self.model = model
        if any(t.kind == "concept" for t in targets):
            raise VitalStudyError("concept directions are visualised with VITAL (paper App. B.3), not by activation "
                                  "maximisation")
        kinds = {t.kind for t in targets}
        layers = {t.layer for t in targets if t.kind == "neuron"}
        if len(kinds) != 1 or len(layers) > 1:
            raise ValueError("an activation batch holds class targets only, or channels of one layer")
        self.layer = layers.pop() if layers else None
        self.index = torch.tensor([t.class_index if t.kind == "class" else t.channel for t in targets])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(x.shape[0], device=x.device)
        index = self.index.to(x.device)
        if self.layer is None:
            return -self.model(x)[rows, index]
        with capture_pre_activation(self.model, self.layer) as acts:
            self.model(x)
        return -channel_means(acts[self.layer])[rows, index]


NEURON_OBJECTIVE = "channel mean (before the layer's closing ReLU, if any)"


class ActivationMethod:
    """Common part of the activation-maximisation baselines (Fourier, MACO): class logits or
    channel means, one group per kind of target."""

    def __init__(self, name, spec, model, config: dict, run_dir, device):
        self.spec, self.model, self.config = spec, model, config

    def group_key(self, target) -> str:
        return "class" if target.kind == "class" else f"{target.kind}:{target.layer}"
