"""What the workflow runs for feature accentuations and the fooling-circuit test (torch-free, so
the rule file `workflow/rules/accentuation.smk` only declares rules and calls these)."""

from __future__ import annotations

import json

from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import job_settings, runs_kind
from vitalstudy.data.classes import classes_for
from vitalstudy.targets import accentuation_targets, parse_target


def accentuation_methods(config: dict) -> list[str]:
    """The configured methods that run accentuation targets."""
    return [m for m in config["generate"]["methods"] if runs_kind(config["generate"], m, "accentuation")]


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
    return [f"{run}/01_references/{model}/{b}.json" for b in reference_targets(config, model)]


def reference_targets(config: dict, model: str) -> list[str]:
    """The classes and neurons whose references accentuations need (the references stage adds them)."""
    entries = config["targets"]["accentuations"]
    classes = classes_for(model)
    return list(dict.fromkeys(parse_target(t, accentuations=entries, classes=classes).reference_id
                              for t in accentuation_targets(config, model)))


def generation_stage_config(config: dict, method: str) -> str:
    """A job's settings: its method's sections, and the accentuation entries its target ids name."""
    values = {k: config[k] for k in ("seed", "device", "models")}
    values["generate"] = job_settings(config["generate"], method)
    values["accentuations"] = config["targets"]["accentuations"]
    return json.dumps(values, sort_keys=True)


def metrics_stage_config(config: dict) -> str:
    values = {"seed": config["seed"], "models": config["models"],
              "accentuations": config["targets"]["accentuations"],
              "bootstrap": config["metrics"]["bootstrap"],
              "feature_layer": config["generate"]["accentuation"]["feature_layer"]}
    return json.dumps(values, sort_keys=True)
