"""`vitalstudy plan`: how many jobs a config's workflow runs per stage and how many device-hours
it needs, from measured generation throughput.

Job counts come from the Snakemake DAG itself (a dry run), so they are the jobs that would run.
Device-hours are the generation images a config plans (models x methods x targets x seeds, less
what a model cannot run) times seconds per target at the measured batch size. The figures are those
`vitalstudy bench --out FILE` wrote and those a run recorded (`results/<run>/02_fv/_batch_size.json`,
the home cache). A (model, method) not measured on a device is extrapolated from one that was, by
the ratio of forward FLOPs per optimisation step; a GPU never measured is estimated from forward
FLOPs at an assumed effective throughput. Every row says which of the three it is.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BACKWARD_FACTOR = 3.0  # a generation step: forward + backward to the input (+ the prior), ~3 forwards
ASSUMED_GPU = "cuda (assumed)"


@lru_cache(maxsize=None)
def forward_flops(model: str) -> float:
    """FLOPs of one forward pass of one image at the model's input size (counted on the meta device)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vitalstudy.models import build_model, get_spec

    spec = get_spec(model)
    with torch.device("meta"):
        network = build_model(spec, pretrained=False)
        x = torch.empty(1, 3, spec.input_size, spec.input_size)
    with FlopCounterMode(display=False) as counter:
        network(x)
    return float(counter.get_total_flops())


def dag_job_counts(configfiles: list[str], snakefile: str = "Snakefile") -> dict[str, int]:
    """Jobs per rule of the workflow's DAG (`snakemake -n --quiet rules`, through this interpreter)."""
    command = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1", "--snakefile", snakefile,
               "--configfile", *configfiles]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(snakefile).resolve().parent)
    if done.returncode != 0:
        from vitalstudy.errors import VitalStudyError

        raise VitalStudyError(f"the dry run failed: {' '.join(command)}\n{(done.stderr or done.stdout)[-2000:]}")
    return parse_job_stats(done.stdout + done.stderr)


def parse_job_stats(text: str) -> dict[str, int]:
    counts, inside = {}, False
    for line in text.splitlines():
        if line.strip().startswith("Job stats:"):
            inside = True
            continue
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s+(\d+)\s*", line) if inside else None
        if match and match.group(1) not in ("job", "total"):
            counts[match.group(1)] = int(match.group(2))
        elif inside and line.strip().startswith("total"):
            break
    return counts


DECLARED_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:|^use\s+rule\s+\w+\s+as\s+(\w+)", re.M)


def rule_stages(rules_dir: Path) -> dict[str, str]:
    """Rule name -> stage, the rule file that declares it (references.smk -> references)."""
    stages = {}
    for path in sorted(Path(rules_dir).glob("*.smk")):
        for found in DECLARED_RULE.findall(path.read_text(encoding="utf-8")):
            name = found[0] or found[1]
            stages[name] = path.stem
    return stages


@dataclass(frozen=True)
class Figure:
    device: str
    model: str
    method: str
    target_steps_per_second: float
    batch: int
    source: str


def read_figures(paths: list[Path]) -> list[Figure]:
    """Best-batch throughput per (device, model, method) from bench reports and batch-size records."""
    figures = []
    for path in paths:
        if not Path(path).is_file():
            continue
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if "results" in data:  # a `vitalstudy bench --out` report
            entries = [(data["device"], r["model"], r["method"], r["rows"]) for r in data["results"]]
        else:  # a run's or the home cache's record: "device|model|method" -> {"measurements": rows}
            entries = [(*key.split("|"), entry.get("measurements", [])) for key, entry in data.items()]
        for device, model, method, rows in entries:
            rows = [r for r in rows if r.get("target_steps_per_second")]
            if rows:
                best = max(rows, key=lambda r: r["target_steps_per_second"])
                figures.append(Figure(device, model, method, best["target_steps_per_second"], best["batch"], str(path)))
    return figures


def known_figures(figures: list[Figure]) -> list[Figure]:
    """The figures of models this config knows; another model's (a test's declared model in the home
    cache) is left out with a note, as nothing can be extrapolated from a model that cannot be built."""
    from vitalstudy.errors import ConfigError
    from vitalstudy.models import get_spec

    known, ignored = [], {}
    for figure in figures:
        try:
            get_spec(figure.model)
            known.append(figure)
        except ConfigError:
            ignored.setdefault(figure.model, figure.source)
    for model, source in ignored.items():
        print(f"note: figures of model {model!r} ({source}) left out: not a model of this config", file=sys.stderr)
    return known


@dataclass
class Work:
    model: str
    method: str
    targets: int  # per seed
    seeds: int
    steps: int
    views: int
    images_per_target: int
    targets_per_job: int

    @property
    def images(self) -> int:
        return self.targets * self.seeds

    def step_flops(self) -> float:
        return forward_flops(self.model) * self.views * self.images_per_target


def generation_work(config: dict) -> list[Work]:
    """One entry per (model, method): the FVs the config plans (class and inner-neuron targets)."""
    from vitalstudy.fv.settings import method_config
    from vitalstudy.metrics.images import planned_images
    from vitalstudy.models import get_spec
    from vitalstudy.targets import class_targets, neuron_targets

    gen = config["generate"]
    work = []
    for model in config["models"]["targets"]:
        keys = planned_images(gen, get_spec(model), class_targets(config, model), neuron_targets(config, model))
        for method in gen["methods"]:
            count = sum(1 for k in keys if k.method == method)
            if not count:
                continue
            settings = method_config(gen, method)
            per = int(settings.get("images_per_target", 1))  # DeepInversion optimises a batch per target
            # DeepInversion's multi-resolution steps see 1/factor² of the pixels: counted as that share of a step
            pooled = settings.get("low_resolution_steps", 0) / settings.get("low_resolution_factor", 2) ** 2
            work.append(Work(model, method, count // len(gen["seeds"]), len(gen["seeds"]),
                             int(settings["steps"]) + math.ceil(pooled),
                             int(settings.get("views_per_step", 1)), per, gen["targets_per_job"]))
    return work


@dataclass
class Estimate:
    work: Work
    seconds_per_target: float | None
    basis: str  # "measured", "extrapolated from ...", "assumed ..."

    @property
    def hours(self) -> float | None:
        return None if self.seconds_per_target is None else self.seconds_per_target * self.work.images / 3600

    @property
    def longest_job_hours(self) -> float | None:
        if self.seconds_per_target is None:
            return None
        return self.seconds_per_target * min(self.work.targets, self.work.targets_per_job) / 3600


def estimate(work: Work, device: str, figures: list[Figure], gpu_tflops: float) -> Estimate:
    """Seconds per target on `device`: measured, else extrapolated by step FLOPs from a measured
    model of the same method on the same device, else (a GPU) from FLOPs at `gpu_tflops`."""
    if device == ASSUMED_GPU:
        rate = gpu_tflops * 1e12 / (BACKWARD_FACTOR * work.step_flops())
        return Estimate(work, work.steps / rate, f"assumed {gpu_tflops:g} TFLOP/s effective, {BACKWARD_FACTOR:g} x "
                                                 f"forward FLOPs per step (no GPU measurement)")
    same = [f for f in figures if f.device == device and f.method == work.method]
    exact = [f for f in same if f.model == work.model]
    if exact:
        best = max(exact, key=lambda f: f.target_steps_per_second)
        return Estimate(work, work.steps / best.target_steps_per_second, f"measured (batch {best.batch})")
    if not same:
        return Estimate(work, None, f"no figure for {work.method} on {device}")
    ref = max(same, key=lambda f: f.target_steps_per_second)
    ref_work = Work(ref.model, work.method, 1, 1, work.steps, work.views, work.images_per_target, 1)
    rate = ref.target_steps_per_second * ref_work.step_flops() / work.step_flops()
    return Estimate(work, work.steps / rate, f"extrapolated from {ref.model} by forward FLOPs "
                                             f"(x{work.step_flops() / ref_work.step_flops():.2f})")


def devices(figures: list[Figure]) -> list[str]:
    return sorted({f.device for f in figures}) + [ASSUMED_GPU]


def default_figure_files(config: dict) -> list[Path]:
    from vitalstudy.fv.bench import cache_path
    from vitalstudy.layout import RunLayout, run_root

    shipped = sorted(Path("benchmarks/figures").glob("*.json"))
    return [*shipped, RunLayout(run_root(config)).fv.batch_size_record, cache_path()]


def render(config: dict, counts: dict[str, int] | None, stages: dict[str, str], figures: list[Figure],
           gpu_tflops: float, gpus: list[int]) -> str:
    lines = [f"vitalstudy plan: run {config['run']!r}"]
    if counts is not None:
        lines.append("jobs per stage (the Snakemake DAG, dry run):")
        per_stage: dict[str, dict[str, int]] = {}
        for rule, n in counts.items():
            per_stage.setdefault(stages.get(rule, "other"), {})[rule] = n
        for stage, rules in per_stage.items():
            detail = ", ".join(f"{r} {n}" for r, n in rules.items())
            lines.append(f"  {stage:<10} {sum(rules.values()):>7}  ({detail})")
        lines.append(f"  {'total':<10} {sum(counts.values()):>7}")
    work = generation_work(config)
    lines.append(f"generation: {sum(w.images for w in work)} images "
                 f"({len(config['models']['targets'])} models x {len(config['generate']['methods'])} methods x "
                 f"targets x {len(config['generate']['seeds'])} seeds, less what a model cannot run; circuits and "
                 f"concept directions not counted)")
    for device in devices(figures):
        estimates = [estimate(w, device, figures, gpu_tflops) for w in work]
        lines.append(f"device {device}:")
        for e in estimates:
            w = e.work
            if e.hours is None:
                lines.append(f"  {w.model:<18} {w.method:<13} {w.images:>6} images x {w.steps} steps: {e.basis}")
                continue
            lines.append(f"  {w.model:<18} {w.method:<13} {w.images:>6} images x {w.steps:>4} steps: "
                         f"{e.seconds_per_target:9.1f} s/target {e.hours:9.1f} h  [{e.basis}]")
        known = [e for e in estimates if e.hours is not None]
        total = sum(e.hours for e in known)
        longest = max((e.longest_job_hours for e in known), default=0.0)
        incomplete = "" if len(known) == len(estimates) else f" (without {len(estimates) - len(known)} unestimated rows)"
        lines.append(f"  generation total{incomplete}: {total:.1f} device-hours on 1 device; "
                     + "; ".join(f"{n} devices: {max(total / n, longest):.1f} h" for n in gpus)
                     + f" (the longest job: {longest:.2f} h)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", nargs="+", required=True, help="the workflow's config file(s)")
    parser.add_argument("--bench", nargs="*", default=None,
                        help="throughput figures (vitalstudy bench --out FILE, or a run's 02_fv/_batch_size.json); "
                             "default: benchmarks/figures/*.json, the run's record and the home cache")
    parser.add_argument("--gpu-tflops", type=float, default=10.0,
                        help="effective FP32 TFLOP/s assumed for a GPU no figure measured (default 10: about an A100's "
                             "ResNet-50 training throughput)")
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 4, 8], help="device counts to estimate for")
    parser.add_argument("--no-dag", action="store_true", help="skip the dry run (no job counts)")


def run(args: argparse.Namespace) -> int:
    from vitalstudy.config import load

    config = load(args.configfile, check_paths=False)
    figures = known_figures(read_figures([Path(p) for p in (args.bench if args.bench is not None
                                                            else default_figure_files(config))]))
    counts = None if args.no_dag else dag_job_counts(args.configfile)
    print(render(config, counts, rule_stages(Path("workflow/rules")), figures, args.gpu_tflops, args.devices))
    return 0


COMMANDS = {"plan": (add_arguments, run)}
