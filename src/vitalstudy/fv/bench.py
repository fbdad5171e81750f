"""Throughput of the generation loop per batch size, and the batch size a run then uses.

Timings run a method's real plan (its objective, relevance, transforms, priors, optimiser) through
the shared loop. A generation job times its own method on its own targets and inputs; `vitalstudy
bench`, which has no run, gives VITAL prototypes from one forward pass of noise and MACO a flat
spectrum, which cost the same as real ones.

Why the batch size is recorded in the run: under `generate.batch_size: auto` it comes from a
timing, and a different batch size changes the last bits of the images. So the first job of a run
that needs a (model, method) on a device decides it once and writes it to
`results/<run>/02_fv/_batch_size.json`; every later job of the run reads it. A measurement kept by
`vitalstudy bench --remember` (the home cache) is taken before a new timing, so fresh runs on one
machine agree as well. `generate.batch_size: <n>` bypasses both.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch

from vitalstudy.fv.loop import optimise
from vitalstudy.fv.plan import Plan
from vitalstudy.io import file_lock, read_json, write_json
from vitalstudy.layout import RunLayout
from vitalstudy.models.registry import ModelSpec
from vitalstudy.seeding import torch_generator

CPU_CANDIDATES = (1, 2, 4, 8)
GPU_CANDIDATES = (1, 4, 8, 16, 32, 64)
RUN_RECORD = RunLayout("").fv.batch_size_record  # relative to the run folder


def cache_path() -> Path:
    xdg_cache = os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")
    root = os.environ.get("VITALSTUDY_CACHE") or os.path.join(xdg_cache, "vitalstudy")
    return Path(root) / "batch_size.json"


def device_key(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads"


def record_key(spec: ModelSpec, method: str, device: torch.device) -> str:
    return f"{device_key(device)}|{spec.name}|{method}"


def time_plan(plan: Plan, targets: int, normalize, steps: int, device: torch.device,
              mixed_precision: bool = False) -> dict:
    """Seconds per step of the plan of `targets` targets (after one warm-up step)."""
    images = plan.images_per_target * targets
    generators = [torch_generator(0, "bench", i) for i in range(images)]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if mixed_precision and device.type == "cuda" else nullcontext()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with autocast:
        for count in (1, steps):
            if count == steps:
                began = time.perf_counter()
            settings = dataclasses.replace(plan.settings, steps=count, warmup=0)
            optimise(plan.parameterisation, plan.objective, normalize, plan.transforms, settings, generators, device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    seconds = time.perf_counter() - began
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mb()
    return {"batch": images, "targets": targets, "steps": steps, "views_per_step": plan.settings.views_per_step,
            "seconds": round(seconds, 3), "step_seconds": round(seconds / steps, 4),
            "image_steps_per_second": round(images * steps / seconds, 3),
            "target_steps_per_second": round(targets * steps / seconds, 4),
            "peak_memory_mb": round(peak, 1)}


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(make_plan: Callable[[int], Plan], images_per_target: int, normalize, device: torch.device, steps: int,
            candidates: tuple[int, ...] | None = None, mixed_precision: bool = False, log=print,
            label: str = "") -> list[dict]:
    """One timing per candidate batch size (images; a method that optimises several images per
    target gets whole targets). `make_plan(n)` builds the plan of n targets."""
    rows, seen = [], set()
    for batch in candidates or (GPU_CANDIDATES if device.type == "cuda" else CPU_CANDIDATES):
        targets = max(1, batch // images_per_target)
        if targets in seen:
            continue
        seen.add(targets)
        try:
            row = time_plan(make_plan(targets), targets, normalize, steps, device, mixed_precision)
        except torch.OutOfMemoryError:
            log(f"bench: batch {batch} does not fit on {device}")
            break
        log(f"bench: {label} batch {row['batch']}: {row['image_steps_per_second']} image-steps/s, "
            f"{row['step_seconds']} s/step, peak {row['peak_memory_mb']} MB")
        rows.append(row)
    return rows


def fastest(rows: list[dict]) -> int:
    return max(rows, key=lambda r: r["image_steps_per_second"])["batch"]


def cached_batch_size(spec: ModelSpec, method: str, device: torch.device) -> dict | None:
    """The home-cache entry `vitalstudy bench --remember` wrote for this (device, model, method)."""
    path = cache_path()
    return read_json(path).get(record_key(spec, method, device)) if path.is_file() else None


def remember_batch_size(spec: ModelSpec, method: str, device: torch.device, rows: list[dict],
                        source: str = "vitalstudy bench") -> int:
    _remember(spec, method, device, _entry(rows, source))
    return fastest(rows)


def _remember(spec: ModelSpec, method: str, device: torch.device, entry: dict) -> None:
    path = cache_path()
    with file_lock(path.with_suffix(".lock")):
        data = read_json(path) if path.is_file() else {}
        data[record_key(spec, method, device)] = entry
        write_json(path, data)


def _entry(rows: list[dict], source: str) -> dict:
    return {"batch": fastest(rows), "source": source, "measurements": rows,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run_batch_size(run_dir: str | Path, spec: ModelSpec, method: str, device: torch.device, setting,
                   measure_now: Callable[[], list[dict]], log=print) -> int:
    """The batch size every job of this run uses for (model, method) on this device: the configured
    one, else the run's record, else the home cache's measurement, else `measure_now()` (kept in
    the home cache too). The record is written under a lock, so concurrent first jobs measure once."""
    if setting != "auto":
        return int(setting)
    path = Path(run_dir) / RUN_RECORD
    key = record_key(spec, method, device)
    with file_lock(path.with_suffix(".lock")):
        record = read_json(path) if path.is_file() else {}
        if key in record:
            return int(record[key]["batch"])
        entry = cached_batch_size(spec, method, device)
        if entry is not None:
            entry = {**entry, "source": f"{entry.get('source', 'home cache')} ({cache_path()})"}
            log(f"generate: batch size for {key} from {cache_path()}: {entry['batch']}")
        else:
            log(f"generate: no measured batch size for {key}; measuring with {method}'s objective")
            entry = _entry(measure_now(), f"measured by the first {method} job of {Path(run_dir).name}")
            _remember(spec, method, device, entry)  # the next fresh run on this machine takes it too
        record[key] = entry
        write_json(path, record)
    log(f"generate: batch size {entry['batch']} recorded in {path}")
    return int(entry["batch"])


def bench_method(method_name: str, spec: ModelSpec, model, config: dict, device: torch.device, work_dir: Path):
    """A method object whose inputs are stand-ins of the same shape: VITAL's reference statistics
    from one forward pass of noise, MACO's spectrum flat. Timing does not depend on their values."""
    import numpy as np

    from vitalstudy.fv.maco import spectrum_path
    from vitalstudy.fv.registry import get_method
    from vitalstudy.fv.sortmatch import as_channels_by_positions, prototype
    from vitalstudy.models.features import capture_outputs

    info = get_method(method_name)
    method = info.method_class()(method_name, spec, model, config, work_dir, device)
    if info.reads_references:
        def noise_statistics(target, references):
            names = [l.name for l in method.layers(target)]
            noise = torch.rand(1, 3, spec.input_size, spec.input_size, generator=torch_generator(0, "bench", "noise"))
            with torch.no_grad(), capture_outputs(model, names) as acts:
                model(spec.normalize(noise).to(device))
                stats = {"prototypes": {n: prototype(as_channels_by_positions(acts[n]).float().cpu()) for n in names}}
            if method.relevance is not None:
                stats["importance"] = {n: torch.ones(p.shape[0]) for n, p in stats["prototypes"].items()}
            return stats
        method.reference_statistics = noise_statistics
    if info.asset == "maco_spectrum":
        size = int(config["resolution"] or spec.input_size)
        path = spectrum_path(work_dir, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, magnitude=np.ones((3, size, size // 2 + 1), dtype=np.float32))
    return method


def measure_method(method_name: str, spec: ModelSpec, model, config: dict, device: torch.device, steps: int,
                   candidates: tuple[int, ...] | None = None, mixed_precision: bool = False, log=print) -> list[dict]:
    """`vitalstudy bench`'s timing of one method (stand-in inputs, class targets; an accentuation
    method accentuates them in a noise seed image)."""
    from PIL import Image

    from vitalstudy.data.classes import classes_for
    from vitalstudy.fv.registry import get_method
    from vitalstudy.targets import accentuation_id, parse_target

    with tempfile.TemporaryDirectory(prefix="vitalstudy-bench-") as work:
        method = bench_method(method_name, spec, model, config, device, Path(work))
        classes = classes_for(spec)
        seed_image = None
        if get_method(method_name).serves("accentuation"):
            seed_image = Path(work) / "seed.png"
            noise = torch.rand(spec.input_size, spec.input_size, 3, generator=torch_generator(0, "bench", "seed"))
            Image.fromarray((noise.numpy() * 255).astype("uint8")).save(seed_image)

        def make_plan(n: int) -> Plan:  # a model with fewer classes than n: its classes again
            ids = [classes.id(i % len(classes)) for i in range(n)]
            entries = [{"image": str(seed_image), "target": c} for c in ids] if seed_image else []
            targets = [parse_target(accentuation_id(e), accentuations=entries, classes=classes) for e in entries] or \
                [parse_target(c, classes=classes) for c in ids]
            return method.plan(targets, {t.id: [] for t in targets})
        return measure(make_plan, getattr(method, "images_per_target", 1), spec.normalize, device, steps, candidates,
                       mixed_precision, log, f"{spec.name} {method_name}")
