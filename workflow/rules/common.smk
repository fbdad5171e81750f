# Config validation and the run's plan, which every rule file reads. A bad config stops here with
# one line naming the key and the problem (vitalstudy.config), before any job starts. Everything
# the rules compute (job lists, input functions, output lists, params) is vitalstudy.workflow's
# WorkflowPlan, importable and unit-tested; the rule files only declare.
import sys

from vitalstudy.config import validate
from vitalstudy.errors import ConfigError
from vitalstudy.workflow import WorkflowPlan, gpu_available

if not config:
    sys.exit("config error: no config given; use --configfile config/config.yaml (the offline demo) "
             "or --profile workflow/profiles/default, which selects it")
try:
    config = validate(config, check_paths=not (workflow.output_settings and workflow.output_settings.dryrun))
except ConfigError as _error:
    sys.exit(f"config error: {_error}")

USE_GPU = gpu_available(config)  # GPU jobs then declare `gpu` resources
# Jobs that run a model: on CPU one such job takes every core (Snakemake caps a job's torch threads
# at its `threads`), on a GPU one core is enough.
PLAN = WorkflowPlan(config, cores=workflow.cores, use_gpu=USE_GPU, report=report,
                    circuit_file=lambda model, wnid: checkpoints.circuits.get(model=model, wnid=wnid).output[0])
RUN = PLAN.run
PATHS = PLAN.layout


wildcard_constraints:
    model=r"[A-Za-z0-9_]+",
    method=r"[a-z_]+",
    target=r"[A-Za-z0-9_.\-]+",
    study=r"[A-Za-z0-9_\-]+",
