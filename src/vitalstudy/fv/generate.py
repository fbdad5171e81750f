"""Running a generation job: a (model, method, seed) and a list of targets.

Targets that can share an optimisation batch (same method group) are run `batch_size` at a time
through the shared loop; each finished batch is written at once (PNG, transparency PNG, sidecar),
so a killed job re-run skips finished targets and resumes the batch in progress from its last
checkpoint. A target's outputs carry a fingerprint of everything that determines them; outputs
with another fingerprint (changed settings) are regenerated, never silently reused.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vitalstudy.data.classes import classes_for
from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.bench import measure, run_batch_size
from vitalstudy.fv.loop import Checkpointer
from vitalstudy.fv.registry import get_method
from vitalstudy.layout import RunLayout
from vitalstudy.io import read_json, save_png, sha256_file, write_json
from vitalstudy.models import get_spec, load_model
from vitalstudy.progress import log as progress_log
from vitalstudy.progress import progress
from vitalstudy.provenance import code_version, package_versions
from vitalstudy.targets import Target, parse_target
from vitalstudy.seeding import torch_generator


CODE_PACKAGES = ("vitalstudy.fv.", "vitalstudy.models.")  # code that decides what a method generates


def method_code_version(method_class) -> str:
    """Hash of the source of a method's module and of every vitalstudy.fv / vitalstudy.models module
    it reaches through module-level imports (the loop, priors, transforms, the model registry...):
    a change to any of them changes the fingerprint of the method's outputs, so they are regenerated."""
    seen: dict[str, str] = {}
    pending = [method_class.__module__, "vitalstudy.fv.loop"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        module = sys.modules.get(name)
        if module is None:
            continue
        seen[name] = inspect.getsource(module)
        for value in vars(module).values():
            owner = value.__name__ if inspect.ismodule(value) else getattr(inspect.getmodule(value), "__name__", "")
            if owner.startswith(CODE_PACKAGES) and owner not in seen:
                pending.append(owner)
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name].encode())
    return digest.hexdigest()[:16]


def output_paths(run_dir: Path, model: str, method: str, target: str, seed: int) -> dict[str, Path]:
    return RunLayout(run_dir).fv.files(model, method, target, seed)


SIDECAR_FORMAT = 2  # outputs written in an older sidecar format are regenerated, not reused


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps([SIDECAR_FORMAT, *parts], sort_keys=True, default=str).encode()).hexdigest()[:20]


def _is_done(paths: dict[str, Path], fingerprint: str) -> bool:
    if not (paths["png"].is_file() and paths["json"].is_file()):
        return False
    return read_json(paths["json"]).get("fingerprint") == fingerprint


def _to_png(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(array, mode="RGB")


def _alpha_png(alpha: torch.Tensor) -> Image.Image:
    return Image.fromarray((alpha.clamp(0, 1).numpy() * 255.0).round().astype(np.uint8), mode="L")


def run_job(run_dir: str | Path, model_name: str, method_name: str, target_ids: list[str], seed: int,
            method_config: dict, device: torch.device, batch_size: int | str, weights: str | None = None,
            mixed_precision: bool = False, concepts: list[dict] | None = None,
            accentuations: list[dict] | None = None, log=progress_log,
            model: torch.nn.Module | None = None) -> JobResult:
    """Generate every target of the job; returns the files read and one record per target (paths, sha256).
    `batch_size`: images per optimisation batch, or "auto": the run's recorded one (fv.bench).
    `model`: the loaded model when the caller has it already (else it is loaded from `weights`)."""
    run_dir = Path(run_dir)
    info = get_method(method_name)
    spec = get_spec(model_name)
    if model is None:
        model = load_model(model_name, weights=weights, device=device)
    method = info.method_class()(method_name, spec, model, method_config, run_dir, device)
    targets = [parse_target(t, concepts, accentuations, classes_for(spec)) for t in target_ids]
    references = {t.id: _references(run_dir, model_name, t) if info.reads_references else []
                  for t in targets}
    asset_files = list(getattr(method, "assets", list)())  # e.g. MACO's spectrum
    fingerprints = target_fingerprints(model_name, method_name, targets, seed, method_config, references, asset_files)
    todo = [t for t in targets if not _is_done(output_paths(run_dir, model_name, method_name, t.id, seed), fingerprints[t.id])]
    if len(todo) < len(targets):
        log(f"generate: {len(targets) - len(todo)} of {len(targets)} targets already done, skipped")
    groups = target_groups(method, todo)
    if todo:
        batch_size = run_batch_size(run_dir, spec, method_name, device, batch_size,
                                    lambda: _measure(spec, method, next(iter(groups.values())), references, device,
                                                     mixed_precision, log), log)
    planned = batches(method, todo, int(batch_size)) if todo else []
    with progress(total=len(todo), desc=f"generate {model_name} {method_name} seed {seed}: targets",
                  unit="target") as done:
        for number, batch in enumerate(planned, 1):
            generate_batch(spec, method, batch, references, fingerprints, seed, device, batch_size, mixed_precision,
                           checkpoint_dir=RunLayout(run_dir).fv.work(spec.name, method.name), log=log,
                           name=f"batch {number}/{len(planned)}",
                           write=lambda fv: fv.save(output_paths(run_dir, spec.name, method.name, fv.target, seed)))
            done.update(len(batch))
    read = [_references_path(run_dir, model_name, t) for t in targets if info.reads_references]
    return JobResult(inputs=[str(p) for p in read + asset_files],
                     records=[_record(run_dir, model_name, method_name, t.id, seed) for t in targets],
                     batch_size=batch_size if todo else None)


def _measure(spec, method, group: list[Target], references, device, mixed_precision, log) -> list[dict]:
    """Time the job's own method on its own targets (repeated when a candidate batch is larger)."""
    def make_plan(n: int):
        return method.plan([group[i % len(group)] for i in range(n)], references)
    return measure(make_plan, getattr(method, "images_per_target", 1), spec.normalize, device, BENCH_STEPS,
                   mixed_precision=mixed_precision, log=log, label=f"{spec.name} {method.name}")


BENCH_STEPS = 3  # timed steps per candidate batch size when a run first needs one


@dataclass
class JobResult:
    inputs: list[str]
    records: list[dict]
    batch_size: int | None = None  # the batch size used, None when every target was done already


def _references_path(run_dir: Path, model: str, target: Target) -> Path:
    return RunLayout(run_dir).references.json(model, target.reference_id)


def _references(run_dir: Path, model: str, target: Target) -> list[dict]:
    path = _references_path(run_dir, model, target)
    if not path.is_file():
        raise VitalStudyError(f"generate: references of {target.id} for {model} are missing ({path}); "
                              f"run the references stage first")
    return read_json(path)["references"]


def target_fingerprints(model_name: str, method_name: str, targets: list[Target], seed: int, method_config: dict,
                        references: dict[str, list[dict]], asset_files: list) -> dict[str, str]:
    """A fingerprint per target of everything that determines its image: model, method, target,
    seed, settings, the references' and the method's assets' sha256, and the method's code."""
    assets = [sha256_file(p) for p in asset_files]
    code = method_code_version(get_method(method_name).method_class())
    return {t.id: _fingerprint(model_name, method_name, t.as_dict(), seed, method_config,
                               [r["sha256"] for r in references[t.id]], assets, code) for t in targets}


def target_groups(method, targets: list[Target]) -> dict[str, list[Target]]:
    """Targets by the method's group: only targets of one group share an optimisation batch."""
    groups: dict[str, list[Target]] = {}
    for target in targets:
        groups.setdefault(method.group_key(target), []).append(target)
    return groups


def batches(method, targets: list[Target], batch_size: int) -> list[list[Target]]:
    """The optimisation batches, batch_size images each: batch_size counts images, so methods that
    optimise several images per target take fewer targets."""
    per_batch = max(1, batch_size // getattr(method, "images_per_target", 1))
    return [group[start:start + per_batch] for group in target_groups(method, targets).values()
            for start in range(0, len(group), per_batch)]


@dataclass
class Visualization:
    """One target's feature visualization: the RGB image, its transparency map and the sidecar
    record (every hyper-parameter, the seed and the compute spent)."""

    target: str
    image: Image.Image
    alpha: Image.Image
    record: dict

    def save(self, paths: dict[str, Path] | str | Path) -> None:
        """Write the stage-2 contract files: {"png", "alpha", "json"} -> path, or a path prefix
        (`x` -> x.png, x_alpha.png, x.json)."""
        if not isinstance(paths, dict):
            paths = {"png": Path(f"{paths}.png"), "alpha": Path(f"{paths}_alpha.png"), "json": Path(f"{paths}.json")}
        save_png(paths["png"], self.image)
        save_png(paths["alpha"], self.alpha)
        write_json(paths["json"], self.record)


def image_generators(seed: int, model: str, method: str, target_ids: list[str], per: int) -> list[torch.Generator]:
    """One generator per optimised image, on the stream (seed, model, method, target[, image j of the target]),
    so a target's images do not depend on which targets share its batch."""
    return [torch_generator(seed, model, method, t, *([j] if j else [])) for t in target_ids for j in range(per)]


def generate_batch(spec, method, batch: list[Target], references, fingerprints, seed, device, batch_size,
                   mixed_precision, checkpoint_dir: Path | None = None, write=None, log=progress_log,
                   name: str = "batch") -> list[Visualization]:
    """Optimise one batch of targets together: the one code path of the workflow's jobs and of
    `vitalstudy.visualize`. With `checkpoint_dir` the loop checkpoints there (a killed job resumes);
    `write` is called on each result before the checkpoint is cleared."""
    plan = method.plan(batch, references)
    per = plan.images_per_target
    generators = image_generators(seed, spec.name, method.name, [t.id for t in batch], per)
    batch_fp = _fingerprint([fingerprints[t.id] for t in batch])
    checkpoint = None if checkpoint_dir is None else \
        Checkpointer(Path(checkpoint_dir) / f"seed{seed}-{batch_fp}.pt", batch_fp, plan.settings.checkpoint_every)
    log(f"generate: {spec.name} {method.name} seed {seed}: {', '.join(t.id for t in batch)} on {device}")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if mixed_precision and device.type == "cuda" else nullcontext()
    with autocast, progress(total=plan.settings.steps, desc=f"  {name} ({len(batch)} targets): steps", unit="step",
                            leave=False) as steps:
        result = plan.optimise(spec.normalize, generators, device, checkpoint, bar=steps)
    diagnostics = getattr(plan.objective, "diagnostics", lambda: None)()
    out = []
    for t, target in enumerate(batch):
        i = t * per  # a target's first image
        if diagnostics and diagnostics[i]["zero_relevance_steps"]:
            log(f"warning: {method.name} {target.id}: its relevance weights on the synthetic image were zero in "
                f"{diagnostics[i]['zero_relevance_steps']} of {diagnostics[i]['steps']} steps (the target inactive "
                f"on it), so sort-matching gave it no gradient then; only the TV/l2 prior moved the image")
        out.append(Visualization(target.id, _to_png(result.images[i]), _alpha_png(result.alpha[i]), {
            "model": spec.name, "method": method.name, "target": target.as_dict(), "seed": seed,
            "resolution": plan.resolution, "hyperparameters": plan.hyperparameters,
            "compute": {**result.compute, "device": str(device), "batch_size": batch_size, "batch_targets": len(batch),
                        "images_per_target": per,
                        # passes per target: every image optimised for it (DeepInversion: its whole batch)
                        "forward_passes": result.compute["forward_passes"] * per,
                        "backward_passes": result.compute["backward_passes"] * per,
                        "seconds_per_target": round(result.compute["seconds"] / len(batch), 3),
                        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                        "mixed_precision": bool(mixed_precision and device.type == "cuda")},
            "final_loss": result.losses[-1][i] if result.losses else None,
            **({"diagnostics": diagnostics[i]} if diagnostics else {}),
            "loss_trace": [round(step[i], 6) for step in result.losses[:: max(1, len(result.losses) // 50)]],
            "references": [{"image_id": r["image_id"], "sha256": r["sha256"], "view": r["view"]} for r in references[target.id]],
            "versions": {**package_versions(), **code_version(), "method_code": method_code_version(type(method))},
            "fingerprint": fingerprints[target.id], "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }))
    for fv in out if write else []:
        write(fv)
    if checkpoint is not None:
        checkpoint.clear()
    return out


def _record(run_dir, model, method, target, seed) -> dict:
    paths = output_paths(run_dir, model, method, target, seed)
    return {"target": target, **{k: {"path": str(p), "sha256": sha256_file(p)} for k, p in paths.items() if p.is_file()}}
