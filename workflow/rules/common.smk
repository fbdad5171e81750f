# Config validation and the helpers every rule file uses. A bad config stops here with one line
# naming the key and the problem (vitalstudy.config), before any job starts.
import json
import re
import sys

from snakemake.exceptions import WorkflowError

from vitalstudy.config import validate
from vitalstudy.errors import ConfigError
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import job_settings
from vitalstudy.models.registry import get_spec
from vitalstudy.references.targets import class_targets, concept_targets, neuron_targets, parse_target

if not config:
    sys.exit("config error: no config given; use --configfile config/config.yaml (the offline demo) "
             "or --profile workflow/profiles/default, which selects it")
_dry_run = bool(workflow.output_settings and workflow.output_settings.dryrun)
try:
    config = validate(config, check_paths=not _dry_run)
except ConfigError as _error:
    sys.exit(f"config error: {_error}")

RUN = f"results/{config['run']}"
MODELS = config["models"]["targets"]


def _gpu_available():
    if config.get("device", "auto") == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


USE_GPU = _gpu_available()  # GPU jobs then declare `gpu` resources
# Jobs that run a model: on CPU one such job takes every core (Snakemake caps a job's torch threads
# at its `threads`), on a GPU one core is enough.
MODEL_THREADS = 1 if USE_GPU else workflow.cores


def stage_config(*sections, **narrowed):
    """The config keys a stage reads, as JSON for its command line; as a rule's params they make
    Snakemake re-run exactly the jobs whose settings changed. `narrowed` replaces a section by the
    part of it a job reads."""
    keys = ("seed", "device") + sections
    values = {k: config[k] for k in keys if k in config} | narrowed
    values["concepts"] = config["targets"].get("concepts", [])  # concept ids are defined there
    return json.dumps(values, sort_keys=True)


def targets_of(model):
    return class_targets(config) + neuron_targets(config, model) + concept_targets(config, model)


def targets_by_kind(model):
    return (("class", class_targets(config)), ("neuron", neuron_targets(config, model)),
            ("concept", concept_targets(config, model)))


wildcard_constraints:
    model=r"[A-Za-z0-9_]+",
    method=r"[a-z_]+",
    target=r"[A-Za-z0-9_.\-]+",
    study=r"[A-Za-z0-9_\-]+",
