"""Throughput of the generation loop per batch size, and the batch size generation then uses.

Timings run the real loop (objective, relevance when the method has it, jitter, priors, Adam) on
the real architecture; prototypes come from one forward pass of noise, which costs the same as
real ones. The fastest batch size per (device, model, method) is cached, so generation uses a
measured value, which `generate.batch_size` in the config can override.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from vitalstudy.fv.loop import LoopSettings, optimise
from vitalstudy.fv.pixels import NormalisedPixels, RollJitter
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.relevance import RelevanceMaps, Start
from vitalstudy.fv.sortmatch import as_channels_by_positions, prototype
from vitalstudy.fv.vital import VitalObjective
from vitalstudy.models.features import capture_outputs
from vitalstudy.models.registry import ModelSpec

CPU_CANDIDATES = (1, 2, 4, 8)
GPU_CANDIDATES = (1, 4, 8, 16, 32, 64)


def cache_path() -> Path:
    root = os.environ.get("VITALSTUDY_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "vitalstudy")
    return Path(root) / "batch_size.json"


def device_key(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads"


def time_loop(spec: ModelSpec, model, method: str, batch: int, steps: int, device: torch.device,
              mixed_precision: bool = False) -> dict:
    """Seconds per step and images per second for one batch size (after one warm-up step)."""
    layers = list(spec.class_layers)
    names = [l.name for l in layers]
    noise = torch.rand(batch, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), capture_outputs(model, names) as acts:
        model(spec.normalize(noise).to(device))
        protos = {n: prototype(as_channels_by_positions(acts[n]))[None].expand(batch, -1, -1).contiguous() for n in names}
    relevance = start = None
    if get_method(method).needs_lrp:
        relevance = RelevanceMaps(spec, model)
        start = Start("class", indices=tuple(range(batch)))
    objective = VitalObjective(model, layers, protos, relevance, start)
    generators = [torch.Generator().manual_seed(i) for i in range(batch)]
    pixels = NormalisedPixels(spec, spec.input_size)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if mixed_precision and device.type == "cuda" else nullcontext()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with autocast:
        optimise(pixels, objective, spec.normalize, [RollJitter(30)], LoopSettings(steps=1, lr=1.0), generators, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        optimise(pixels, objective, spec.normalize, [RollJitter(30)], LoopSettings(steps=steps, lr=1.0), generators, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    seconds = time.perf_counter() - began
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mb()
    return {"batch": batch, "steps": steps, "seconds": round(seconds, 3), "step_seconds": round(seconds / steps, 4),
            "image_steps_per_second": round(batch * steps / seconds, 3), "peak_memory_mb": round(peak, 1)}


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(spec: ModelSpec, model, method: str, device: torch.device, steps: int,
            candidates: tuple[int, ...] | None = None, mixed_precision: bool = False, log=print) -> list[dict]:
    rows = []
    for batch in candidates or (GPU_CANDIDATES if device.type == "cuda" else CPU_CANDIDATES):
        try:
            row = time_loop(spec, model, method, batch, steps, device, mixed_precision)
        except torch.OutOfMemoryError:
            log(f"bench: batch {batch} does not fit on {device}")
            break
        log(f"bench: {spec.name} {method} batch {batch}: {row['image_steps_per_second']} image-steps/s, "
            f"{row['step_seconds']} s/step, peak {row['peak_memory_mb']} MB")
        rows.append(row)
    return rows


def fastest(rows: list[dict]) -> int:
    return max(rows, key=lambda r: r["image_steps_per_second"])["batch"]


def cached_batch_size(spec: ModelSpec, method: str, device: torch.device) -> int | None:
    path = cache_path()
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get(f"{device_key(device)}|{spec.name}|{method}", {}).get("batch")


def remember_batch_size(spec: ModelSpec, method: str, device: torch.device, rows: list[dict]) -> int:
    path = cache_path()
    data = json.loads(path.read_text()) if path.is_file() else {}
    best = fastest(rows)
    data[f"{device_key(device)}|{spec.name}|{method}"] = {"batch": best, "measurements": rows,
                                                           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return best


def batch_size_for(spec: ModelSpec, model, method: str, device: torch.device, setting, log=print) -> int:
    """The configured batch size, or the measured fastest one (measured now when not cached)."""
    if setting != "auto":
        return int(setting)
    # Timed with VITAL's loop (with relevance when the method needs LRP): see the note in time_loop.
    method_key = "vital_lrp" if get_method(method).needs_lrp else "vital"
    cached = cached_batch_size(spec, method_key, device)
    if cached:
        return int(cached)
    log(f"generate: no measured batch size for {spec.name} {method_key} on {device_key(device)}; measuring")
    rows = measure(spec, model, method_key, device, steps=3, log=log)
    return remember_batch_size(spec, method_key, device, rows)
