"""MACO (Fel et al. 2023): only the phase of the Fourier spectrum is optimised; its magnitude is
fixed to the mean colour-decorrelated |FFT| of natural images. The magnitude is computed here from
the run's own image set and stored as an asset with provenance (Horama downloads an ImageNet one).
The image is Horama's `maco_preconditioner`; each step sees several noisy random crops of it
(`transforms.MacoViews`, Horama's sampler by default; PAPER_NOTES §2, §2b)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import v2 as T

from vitalstudy.data.sources import UnreadableImageError, load_rgb
from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.color import HORAMA_COLOR_MATRIX, decorrelate
from vitalstudy.fv.fourier import spectrum_to_pixels, standardise
from vitalstudy.fv.objectives import NEURON_OBJECTIVE, ActivationMethod, ActivationObjective
from vitalstudy.fv.plan import Plan, loop_settings
from vitalstudy.fv.transforms import maco_views
from vitalstudy.layout import RunLayout
from vitalstudy.seeding import rng as seeded_rng


def spectrum_path(run_dir, size: int) -> Path:
    return RunLayout(run_dir).fv.maco_spectrum(size)


def natural_spectrum(index: pd.DataFrame, size: int, count: int, seed: int) -> tuple[np.ndarray, list[str], list[dict]]:
    """Mean |rfft2| (3, size, size//2+1) of `count` seeded images, colour-decorrelated, in [0, 1] pixels."""
    rows = index.sort_values("image_id")
    if len(rows) > count:
        rows = rows.iloc[np.sort(seeded_rng(seed, "maco-spectrum").choice(len(rows), count, replace=False))]
    to_tensor = T.Compose([T.ToImage(), T.Resize(size, antialias=True), T.CenterCrop(size),
                           T.ToDtype(torch.float32, scale=True)])
    total, used, skipped = None, [], []
    for row in rows.itertuples():
        try:
            x = to_tensor(load_rgb(row.path))[None]
        except UnreadableImageError as exc:
            skipped.append({"path": row.path, "reason": str(exc)})
            continue
        magnitude = torch.fft.rfft2(decorrelate(x - 0.5, HORAMA_COLOR_MATRIX), norm="ortho").abs()[0]
        total = magnitude if total is None else total + magnitude
        used.append(row.image_id)
    if total is None:
        raise VitalStudyError("MACO spectrum: no readable image in the run's image index")
    return (total / len(used)).numpy(), used, skipped


def maco_preconditioner(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Horama's `maco_preconditioner`: the standardised phase on the fixed magnitude, inverse FFT,
    standardised, colour-recorrelated, sigmoid (to the valid pixel range; the loop applies the
    model's normalisation). Standardising the phase is what lets Adam at lr 1.0 settle: the step
    shrinks relative to the phase as its spread grows."""
    phase = standardise(phase)
    magnitude = magnitude.to(phase.device)
    return spectrum_to_pixels(torch.complex(torch.cos(phase) * magnitude, torch.sin(phase) * magnitude),
                              phase.shape[2])


class MacoImage:
    """Phase -> image, the phase initialised N(0, 1)."""

    def __init__(self, magnitude: torch.Tensor):
        self.magnitude = magnitude  # (3, H, W//2+1)
        self.size = magnitude.shape[1]

    def init(self, generators: list[torch.Generator]) -> torch.Tensor:
        return torch.stack([torch.randn(self.magnitude.shape, generator=g) for g in generators])

    def images(self, phase: torch.Tensor) -> torch.Tensor:
        return maco_preconditioner(self.magnitude, phase)

    def project_(self, params: torch.Tensor) -> None:
        """The phase is unconstrained."""


class MacoMethod(ActivationMethod):
    name = "maco"

    def __init__(self, name, spec, model, config: dict, run_dir, device):
        super().__init__(name, spec, model, config, run_dir, device)
        self.spectrum_file = spectrum_path(run_dir, int(config["resolution"] or spec.input_size))

    def assets(self) -> list[Path]:
        return [self.spectrum_file]

    def plan(self, targets, references) -> Plan:
        cfg = self.config
        asset = self.spectrum_file
        if not asset.is_file():
            raise VitalStudyError(f"MACO: the natural-image spectrum {asset} is missing; the workflow's maco_spectrum "
                                  f"rule (vitalstudy maco-spectrum) writes it")
        magnitude = torch.from_numpy(np.load(asset)["magnitude"])
        settings = loop_settings(cfg, schedule="constant")
        views = maco_views(cfg, self.spec)
        hyper = {"parameterisation": "phase only; magnitude = mean decorrelated |FFT| of natural images",
                 "spectrum_file": str(asset), "views": views.describe(),
                 "objective": "class logit" if targets[0].kind == "class" else NEURON_OBJECTIVE,
                 "loop": settings.as_dict()}
        return Plan(MacoImage(magnitude), [views], ActivationObjective(self.model, targets), settings, hyper,
                    magnitude.shape[1])
