# Stage 0-1: index the source images, then choose each target's reference images.


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
        cfg=PLAN.stage_config("references", "models"),
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("score_patches", "{model}", "{layer}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} references score-patches --stage-config {params.cfg:q} --index {input.index:q} "
        "--model {wildcards.model} --layer {wildcards.layer:q} --out {output:q} > {log:q} 2>&1"


rule select_references:
    input:
        index=rules.index_images.output.index,
        patch_scores=PLAN.patch_scores,
    output:
        json=PATHS.references.json("{model}", "{target}"),
        montage=PLAN.report(PATHS.references.montage("{model}", "{target}"),
                            caption="../report/references.rst", category="1. References",
                            labels={"model": "{model}", "target": "{target}"}),
        provenance=PATHS.references.provenance("{model}", "{target}"),
    params:
        cfg=PLAN.stage_config("references", "models"),
        patch_scores=PLAN.patch_scores_option,
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("select_references", "{model}", "{target}"),
    group:
        "references"
    shell:
        "{VITALSTUDY} references select --stage-config {params.cfg:q} --index {input.index:q} "
        "--model {wildcards.model} --target {wildcards.target:q} {params.patch_scores} "
        "--out-json {output.json:q} --out-png {output.montage:q} --provenance {output.provenance:q} > {log:q} 2>&1"


checkpoint circuits:
    """The class's most relevant channels (Fig. 4); they become inner-neuron targets."""
    input:
        references=PATHS.references.json("{model}", "{wnid}"),
    output:
        PATHS.references.circuit("{model}", "{wnid}"),
    wildcard_constraints:
        wnid=r"n\d{8}",
    params:
        cfg=PLAN.stage_config("references", "models"),
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("circuits", "{model}", "{wnid}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} references circuits --stage-config {params.cfg:q} --model {wildcards.model} "
        "--references {input.references:q} --out {output:q} > {log:q} 2>&1"
