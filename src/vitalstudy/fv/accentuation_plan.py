"""What the workflow runs for feature accentuations and the fooling-circuit test (torch-free, so
the rule file `workflow/rules/accentuation.smk` only declares rules and calls these)."""

from __future__ import annotations

import json

from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import job_settings
from vitalstudy.data.classes import classes_for
from vitalstudy.references.targets import accentuation_targets, parse_target


def accentuation_methods(config: dict) -> list[str]:
    """The configured methods that visualise accentuation targets."""
    return [m for m in config["generate"]["methods"] if get_method(m).serves("accentuation")]


def accentuation_jobs(config: dict, models: list[str]) -> list[tuple[str, str, int, list[str]]]:
    """(model, method, seed, accentuation target ids): one job per model, method and seed."""
    jobs = []
    for model in models:
        targets = accentuation_targets(config, model)
        if not targets:
            continue
        for method in accentuation_methods(config):
            jobs += [(model, method, seed, targets) for seed in config["generate"]["seeds"]]
    return jobs


def job_record(run: str, model: str, method: str, seed: int) -> str:
    return f"{run}/02_fv/{model}/{method}/_jobs/seed{seed}-accentuations.json"


def reference_inputs(run: str, config: dict, model: str, method: str) -> list[str]:
    """The stage-1 references a job reads: those of each accentuated class or neuron (VITAL's)."""
    if not get_method(method).reads_references:
        return []
    entries = config["targets"].get("accentuations", [])
    return [f"{run}/01_references/{model}/{b}.json" for b in reference_targets(config, model)]


def reference_targets(config: dict, model: str) -> list[str]:
    """The classes and neurons whose references accentuations need (the references stage adds them)."""
    entries = config["targets"].get("accentuations", [])
    classes = classes_for(model)
    return list(dict.fromkeys(parse_target(t, accentuations=entries, classes=classes).reference_id
                              for t in accentuation_targets(config, model)))


def generation_stage_config(config: dict, method: str) -> str:
    """A job's settings: its method's sections, and the accentuation entries its target ids name."""
    values = {k: config[k] for k in ("seed", "device", "models") if k in config}
    values["generate"] = job_settings(config["generate"], method)
    values["accentuations"] = config["targets"].get("accentuations", [])
    return json.dumps(values, sort_keys=True)


def metrics_stage_config(config: dict) -> str:
    values = {"seed": config["seed"], "models": config.get("models", {}),
              "accentuations": config["targets"].get("accentuations", []),
              "bootstrap": config.get("metrics", {}).get("bootstrap", {"iterations": 1000, "confidence": 0.95}),
              "feature_layer": config["generate"].get("accentuation", {}).get("feature_layer")}
    return json.dumps(values, sort_keys=True)
