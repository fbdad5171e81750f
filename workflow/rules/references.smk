# Stage 0-1: index the source images, then choose each target's reference images (in batches of
# targets per job; the plan, PLAN.reference_jobs, says which).


rule index_images:
    output:
        index=PATHS.index.images,
        skipped=PATHS.index.skipped,
        provenance=PATHS.index.provenance,
    params:
        images=PLAN.index_images(),
        seed=config["seed"],
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("index_images"),
    shell:
        "{VITALSTUDY} index --images {params.images:q} --seed {params.seed} --out {output.index:q} "
        "--skipped {output.skipped:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule score_patches:
    input:
        index=rules.index_images.output.index,
    output:
        PATHS.references.patch_scores("{model}", "{layer}"),
    params:
        cfg=PLAN.references_config,
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("score_patches", "{model}", "{layer}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} references score-patches --stage-config {params.cfg:q} --index {input.index:q} "
        "--model {wildcards.model} --layer {wildcards.layer:q} --out {output:q} > {log:q} 2>&1"


rule select_references:
    """A batch of a model's targets (PLAN.reference_jobs, references.targets_per_job per job). Each
    target's JSON, montage and provenance go where the layout puts them; the job record, written
    last, is the declared output, and later stages depend on it (PLAN.reference_records)."""
    input:
        index=rules.index_images.output.index,
        patch_scores=PLAN.patch_scores,
    output:
        PATHS.references.job_record("{model}", "{batch}"),
    wildcard_constraints:
        batch=r"\d{3}",
    params:
        cfg=PLAN.references_config,
        run_dir=RUN,
        targets=PLAN.selection_targets_arg,
        patch_scores=PLAN.patch_scores_option,
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("select_references", "{model}", "b{batch}"),
    shell:
        "{VITALSTUDY} references select --stage-config {params.cfg:q} --index {input.index:q} --model {wildcards.model} "
        "--targets {params.targets} {params.patch_scores} --run-dir {params.run_dir:q} --record {output:q} > {log:q} 2>&1"


checkpoint circuits:
    """The class's most relevant channels (Fig. 4); they become inner-neuron targets."""
    input:
        PLAN.circuit_references,
    output:
        PATHS.references.circuit("{model}", "{wnid}"),
    wildcard_constraints:
        wnid=r"n\d{8}",
    params:
        cfg=PLAN.references_config,
        references=PLAN.circuit_references_file,
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("circuits", "{model}", "{wnid}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} references circuits --stage-config {params.cfg:q} --model {wildcards.model} "
        "--references {params.references:q} --out {output:q} > {log:q} 2>&1"


# The references of a circuit's channels (known once the circuits checkpoint ran), for VITAL.
use rule select_references as select_circuit_references with:
    input:
        index=rules.index_images.output.index,
        circuit=PATHS.references.circuit("{model}", "{wnid}"),
        patch_scores=PLAN.patch_scores,
    output:
        PATHS.references.circuit_job_record("{model}", "{wnid}"),
    wildcard_constraints:
        wnid=r"n\d{8}",
    log:
        PATHS.log("select_references", "{model}", "circuit-{wnid}"),
