# Config validation and the run's plan, which every rule file reads. A bad config stops here with
# one line naming the key and the problem (vitalstudy.config), before any job starts. Everything
# the rules compute (job lists, input functions, output lists, params) is vitalstudy.workflow's
# WorkflowPlan, importable and unit-tested; the rule files only declare.
import os
import sys

from vitalstudy.config import validate
from vitalstudy.errors import ConfigError
from vitalstudy.preflight import stop_if_missing
from vitalstudy.workflow import WorkflowPlan, global_resource

if not config:
    sys.exit("config error: no config given; use --configfile config/config.yaml (the offline demo) "
             "or --profile workflow/profiles/default, which selects it")
_DRY_RUN = bool(workflow.output_settings and workflow.output_settings.dryrun)
try:
    config = validate(config, check_paths=not _DRY_RUN)
except ConfigError as _error:
    sys.exit(f"config error: {_error}")
# Every asset the DAG reads, before any job starts (VITALSTUDY_PREFLIGHT=0: `make lint`, which runs no job).
if workflow.is_main_process and not _DRY_RUN and os.environ.get("VITALSTUDY_PREFLIGHT", "1") != "0":
    stop_if_missing(config)

# Jobs that run a model declare `gpu` (from the config's device) and share the cores among the GPUs.
PLAN = WorkflowPlan(config, report=report, cores=global_resource(workflow, "_cores"),
                    gpus=global_resource(workflow, "gpu"),
                    circuit_file=lambda model, wnid: checkpoints.circuits.get(model=model, wnid=wnid).output[0])
if workflow.is_main_process:
    PLAN.print_notices()
RUN = PLAN.run
VITALSTUDY = PLAN.cli  # the rules' command: this interpreter's vitalstudy
PATHS = PLAN.layout


wildcard_constraints:
    model=r"[A-Za-z0-9_]+",
    method=r"[a-z_]+",
    target=r"[A-Za-z0-9_.\-]+",
    study=r"[A-Za-z0-9_\-]+",
