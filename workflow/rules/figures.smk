# Stage 6: the paper's figures (PNG + PDF) with a statistics or data table beside each, drawn by
# `vitalstudy figures KIND` (vitalstudy.figures). Study figures read stage 4 (manifest, answer key)
# and stage 5 (tidy responses, text similarity); which ones a study gets follows the section types
# of its spec. Model figures read stage 2 images and stage 3 t-SNE coordinates. Every call also
# writes 06_figures/<study|model>/_provenance/<name>.json. Reads config keys seed, figures,
# generate.methods, generate.seeds, study.studies (and metrics, when the metrics stage is present).
# Study figures share their inputs (PLAN.study_figure_inputs) and these command-line arguments:
STUDY_ARGS = ("--stage-config {params.cfg:q} --manifest {input.manifest:q} --answer-key {input.answer_key:q} "
              "--responses {input.responses:q}")


wildcard_constraints:
    section=r"likert_[A-Za-z0-9_-]+",


rule figure_likert:
    input:
        **PLAN.study_figure_inputs(),
    output:
        **PLAN.figure_outputs("{study}", "{section}", "likert", questions=True),
    params:
        cfg=PLAN.stage_config("figures"),
        prefix=PLAN.figure_prefix("{study}", "{section}"),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("figures", "{study}", "{section}"),
    shell:
        "{VITALSTUDY} figures likert " + STUDY_ARGS + " --section {wildcards.section:q} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_free_label:
    input:
        **PLAN.study_figure_inputs(),
        scores=PATHS.responses.file("{study}", "text_similarity.csv"),
    output:
        **PLAN.figure_outputs("{study}", "free_label", "similarity", questions=True),
    params:
        cfg=PLAN.stage_config("figures"),
        prefix=PLAN.figure_prefix("{study}", "free_label"),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("figures", "{study}", "free_label"),
    shell:
        "{VITALSTUDY} figures similarity " + STUDY_ARGS + " --scores {input.scores:q} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_two_afc:
    input:
        **PLAN.study_figure_inputs(),
    output:
        **PLAN.figure_outputs("{study}", "two_afc", "two_afc"),
    params:
        cfg=PLAN.stage_config("figures"),
        prefix=PLAN.figure_prefix("{study}", "two_afc"),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("figures", "{study}", "two_afc"),
    shell:
        "{VITALSTUDY} figures two-afc " + STUDY_ARGS + " --out {params.prefix:q} > {log:q} 2>&1"


rule figure_demographics:
    input:
        **PLAN.study_figure_inputs(),
    output:
        **PLAN.figure_outputs("{study}", "demographics", "demographics"),
    params:
        cfg=PLAN.stage_config("figures"),
        prefix=PLAN.figure_prefix("{study}", "demographics"),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("figures", "{study}", "demographics"),
    shell:
        "{VITALSTUDY} figures demographics " + STUDY_ARGS + " --out {params.prefix:q} > {log:q} 2>&1"


rule figure_tsne:
    input:
        coordinates=PATHS.metrics.measure("{model}", "tsne"),
    output:
        **PLAN.figure_outputs("{model}", "tsne", "tsne", table_caption="table_tsne"),
    params:
        cfg=PLAN.stage_config("figures"),
        prefix=PLAN.figure_prefix("{model}", "tsne"),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("figures", "{model}", "tsne"),
    shell:
        "{VITALSTUDY} figures tsne --stage-config {params.cfg:q} --coordinates {input.coordinates:q} "
        "--model {wildcards.model} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_grid:
    input:
        PLAN.grid_images,
    output:
        **PLAN.figure_outputs("{model}", "grid_{kind}", "grid", table="data"),
    wildcard_constraints:
        kind="classes|neurons",
    params:
        cfg=PLAN.stage_config("figures"),
        fv_root=str(PATHS.fv.root),
        prefix=PLAN.figure_prefix("{model}", "grid_{kind}"),
        methods=PLAN.grid_methods_arg,
        seed=PLAN.grid_seed,
        targets=PLAN.grid_targets_arg,
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("figures", "{model}", "grid_{kind}"),
    shell:
        "{VITALSTUDY} figures grid --stage-config {params.cfg:q} --fv-root {params.fv_root:q} --model {wildcards.model} "
        "--methods {params.methods} --seed {params.seed} --targets {params.targets} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_circuits:
    input:
        circuits=PLAN.circuit_files,
        images=PLAN.circuit_records,
    output:
        **PLAN.figure_outputs("{model}", "circuits", "circuits", table="data"),
    params:
        cfg=PLAN.stage_config("figures"),
        fv_root=str(PATHS.fv.root),
        prefix=PLAN.figure_prefix("{model}", "circuits"),
        methods=PLAN.circuit_methods_arg,
        seed=PLAN.grid_seed,
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("figures", "{model}", "circuits"),
    shell:
        "{VITALSTUDY} figures circuits --stage-config {params.cfg:q} --fv-root {params.fv_root:q} --model {wildcards.model} "
        "--methods {params.methods} --seed {params.seed} --circuits {input.circuits:q} --out {params.prefix:q} > {log:q} 2>&1"
