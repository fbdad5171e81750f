"""The one optimisation loop every feature-visualization method runs.

A method supplies a `Parameterisation` (what is optimised and how it becomes an image), a list of
`Transform`s (random augmentations before the model sees the image) and an `Objective` (a loss per
image). The loop owns the rest: optimiser and learning-rate schedule, priors, projection to the
valid range, transparency-map accumulation and periodic checkpoints so a killed job resumes.

Every random draw comes from a per-image generator seeded from (config seed, model, method, target),
and losses are summed over the batch, so each image's trajectory is independent of which other
targets share its batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import torch

from vitalstudy.fv.priors import l2_norm, total_variation
from vitalstudy.io import atomic_path


class Parameterisation(Protocol):
    def init(self, generators: list[torch.Generator]) -> torch.Tensor: ...

    def images(self, params: torch.Tensor) -> torch.Tensor:
        """Differentiable map from parameters to (B, 3, H, W) pixels in [0, 1]."""

    def project_(self, params: torch.Tensor) -> None:
        """In-place projection after each step (e.g. clamping to the valid pixel range)."""


class Transform(Protocol):
    def __call__(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor: ...


class Objective(Protocol):
    def __call__(self, model_input: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) model input -> (B,) losses."""


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: str = "adam"  # adam | nadam
    warmup: int = 0
    schedule: str = "cosine"  # cosine | constant
    tv_weight: float = 0.0
    l2_weight: float = 0.0
    views_per_step: int = 1  # MACO-style several random crops per step
    checkpoint_every: int = 100
    alpha_percentile: float = 98.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Stage:
    """A run of steps with its own transforms, a fresh optimiser and its own learning-rate schedule
    (NVlabs' multi-resolution DeepInversion: 2k steps on the 2x average-pooled image, then 1k at
    full size, re-creating Adam and restarting the warm-up + cosine schedule at the switch)."""
    steps: int
    transforms: list


def lr_factor(step: int, settings: LoopSettings) -> float:
    """Linear warm-up to the base rate, then cosine decay to zero (or constant)."""
    if settings.warmup and step < settings.warmup:
        return (step + 1) / settings.warmup
    if settings.schedule == "constant":
        return 1.0
    span = max(1, settings.steps - settings.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - settings.warmup) / span)))


@dataclass
class LoopResult:
    images: torch.Tensor  # (B, 3, H, W) in [0, 1]
    alpha: torch.Tensor  # (B, H, W) in [0, 1]
    losses: list[list[float]]  # per step, per image
    compute: dict = field(default_factory=dict)


class Checkpointer:
    """Saves the loop state every `every` steps under `path`; a matching fingerprint resumes it."""

    def __init__(self, path: str | Path, fingerprint: str, every: int):
        self.path, self.fingerprint, self.every = Path(path), fingerprint, max(1, every)

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        return state if state.get("fingerprint") == self.fingerprint else None

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp:
            torch.save({**state, "fingerprint": self.fingerprint}, tmp)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _alpha_map(accumulated: torch.Tensor, percentile: float) -> torch.Tensor:
    """Channel-mean |gradient| clipped at its percentile and scaled to [0, 1] (PAPER_NOTES §1)."""
    flat = accumulated.flatten(1)
    cap = torch.quantile(flat, percentile / 100.0, dim=1).clamp_min(1e-12)
    clipped = torch.minimum(accumulated, cap.view(-1, 1, 1))
    return clipped / clipped.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)


def optimise(parameterisation: Parameterisation, objective: Objective, to_model_input,
             transforms: list[Transform], settings: LoopSettings, generators: list[torch.Generator],
             device: torch.device, checkpoint: Checkpointer | None = None, bar=None,
             image_prior=None, stages: list[Stage] | None = None) -> LoopResult:
    """Run the loop; `to_model_input` maps [0, 1] pixels to the model's input space. `bar`: a
    progress bar (vitalstudy.progress) of `settings.steps` that the loop advances per step.
    `image_prior`, when given, maps the untransformed model input to (B,) losses added once per
    step (e.g. an accentuation's distance to its seed image). `stages`, when given, replace
    `transforms`: their steps add up to `settings.steps`, and each starts a fresh optimiser and
    schedule (warm-up and decay over its own steps)."""
    stages = stages or [Stage(settings.steps, transforms)]
    if sum(stage.steps for stage in stages) != settings.steps:
        raise ValueError(f"the stages' steps ({[stage.steps for stage in stages]}) do not add up to {settings.steps}")
    starts = [sum(stage.steps for stage in stages[:i]) for i in range(len(stages))]

    def stage_at(step: int) -> int:
        return max(i for i, first in enumerate(starts) if first <= step)

    params = parameterisation.init(generators).to(device).requires_grad_(True)
    optimizer_class = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam}[settings.optimizer]

    def fresh_optimiser(stage: Stage):
        optimizer = optimizer_class([params], lr=settings.lr, betas=tuple(settings.betas))
        own = replace(settings, steps=stage.steps)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, own))

    with torch.no_grad():
        image_side = parameterisation.images(params).shape[2:]
    grad_sum = torch.zeros(params.shape[0], *image_side, device=device)
    losses: list[list[float]] = []
    start_step, elapsed = 0, 0.0
    state = checkpoint.load() if checkpoint else None
    if state is not None:
        start_step = state["step"]
    current = stage_at(max(start_step - 1, 0))  # the stage whose optimiser state the checkpoint holds
    optimizer, scheduler = fresh_optimiser(stages[current])
    if state is not None:
        with torch.no_grad():
            params.copy_(state["params"].to(device))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        grad_sum = state["grad_sum"].to(device)
        for g, g_state in zip(generators, state["generators"]):
            g.set_state(g_state)
        losses, elapsed = state["losses"], state["seconds"]
        if bar is not None:
            bar.update(start_step)

    began = time.perf_counter()
    for step in range(start_step, settings.steps):
        if stage_at(step) != current:
            current = stage_at(step)
            optimizer, scheduler = fresh_optimiser(stages[current])
        optimizer.zero_grad(set_to_none=True)
        pixels = parameterisation.images(params)
        pixels.retain_grad()
        total = torch.zeros(params.shape[0], device=device)
        for _ in range(settings.views_per_step):
            x = to_model_input(pixels)
            for transform in stages[current].transforms:
                x = transform(x, generators)
            total = total + objective(x)
        if settings.tv_weight or settings.l2_weight or image_prior is not None:
            x_plain = to_model_input(pixels)
            if settings.tv_weight:
                total = total + settings.tv_weight * total_variation(x_plain)
            if settings.l2_weight:
                total = total + settings.l2_weight * l2_norm(x_plain)
            if image_prior is not None:
                total = total + image_prior(x_plain)
        total.sum().backward()
        grad_sum += pixels.grad.detach().abs().mean(dim=1)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            parameterisation.project_(params)
        losses.append(total.detach().cpu().tolist())
        done = step + 1
        if bar is not None:
            bar.update()
        if checkpoint and done % checkpoint.every == 0 and done < settings.steps:
            checkpoint.save({"params": params.detach().cpu(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "grad_sum": grad_sum.cpu(),
                             "generators": [g.get_state() for g in generators], "step": done,
                             "losses": losses, "seconds": elapsed + time.perf_counter() - began})
    seconds = elapsed + time.perf_counter() - began
    with torch.no_grad():
        images = parameterisation.images(params).clamp(0, 1).cpu()
    passes = (settings.steps - start_step) * settings.views_per_step
    return LoopResult(images=images, alpha=_alpha_map(grad_sum, settings.alpha_percentile).cpu(), losses=losses,
                      compute={"steps": settings.steps, "resumed_at_step": start_step,
                               "views_per_step": settings.views_per_step,
                               "forward_passes": settings.steps * settings.views_per_step,
                               "backward_passes": settings.steps * settings.views_per_step,
                               "passes_this_run": passes, "seconds": round(seconds, 3),
                               "seconds_per_image": round(seconds / params.shape[0], 3)})
