# Stage 3: automated metrics of the FVs (vitalstudy.metrics): one job per target model (models are
# loaded once for all its metrics), then the paper-shaped tables. The FVs read are the stage-2
# contract files (02_fv/<model>/<method>/<target>/seed<k>.png + .json) of generate.methods x
# targets x generate.seeds; the rule depends on the generation job records that write them.


rule metrics_measure:
    input:
        index=rules.index_images.output.index,
        fvs=PLAN.metrics_fv_records,
        references=PLAN.neuron_references,
    output:
        **PLAN.metrics_measure_outputs(),
    params:
        cfg=PLAN.metrics_config(),
        fv_root=str(PATHS.fv.root),
        references=str(PATHS.references.model_dir("{model}")),
        out_dir=str(PATHS.metrics.model_dir("{model}")),
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("metrics", "{model}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} metrics measure --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {params.fv_root:q} --references-dir {params.references:q} "
        "--out-dir {params.out_dir:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_tables:
    input:
        PLAN.metrics_tables_inputs(),
    output:
        **PLAN.metrics_tables_outputs(),
    params:
        cfg=PLAN.metrics_config(),
        out_dir=str(PATHS.metrics.tables_dir),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("metrics", "tables"),
    shell:
        "{VITALSTUDY} metrics tables --stage-config {params.cfg:q} --inputs {input:q} --out-long {output.long:q} "
        "--out-dir {params.out_dir:q} --provenance {output.provenance:q} > {log:q} 2>&1"
