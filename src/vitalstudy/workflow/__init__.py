"""The workflow's planning: what the Snakemake rules (workflow/rules/*.smk) declare, computed here
so that it can be imported and unit-tested (`WorkflowPlan`)."""

from vitalstudy.workflow.plan import (CircuitJob, GenerationJob, PlanError, ReferenceJob, WorkflowPlan, global_resource,
                                     model_job_gpus)

__all__ = ["CircuitJob", "GenerationJob", "PlanError", "ReferenceJob", "WorkflowPlan", "global_resource", "model_job_gpus"]
