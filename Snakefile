# vitalstudy: one DAG from reference selection to the paper's figures. Run from the repository root:
#   snakemake --profile workflow/profiles/default                 (the offline demo, config/config.yaml)
#   snakemake --profile workflow/profiles/default --configfile config/sample.yaml
# The rules hold no logic: each calls the `vitalstudy` command of its stage (src/vitalstudy), and
# what they plan (jobs, inputs, outputs, params) is vitalstudy.workflow.WorkflowPlan (PLAN).

from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/references.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/study.smk"
include: "workflow/rules/responses.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/accentuation.smk"


rule all:
    input:
        PLAN.all_outputs(),
    default_target: True
