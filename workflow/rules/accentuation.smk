# Feature accentuations (targets.accentuations, methods serving "accentuation": generation, metrics,
# figure) and the fooling-circuit test (config section `fooling`, when given). The rules only
# declare; what they run comes from vitalstudy.fv.accentuation_plan, through PLAN.


rule generate_accentuation:
    input:
        index=rules.index_images.output.index,  # seed images named by image id
        references=PLAN.accentuation_references,
    output:
        str(PATHS.fv.jobs_dir("{model}", "{method}") / "seed{seed}-accentuations.json"),
    wildcard_constraints:
        seed=r"\d+",
    params:
        cfg=PLAN.accentuation_config,
        run_dir=RUN,
        targets=PLAN.accentuation_targets_arg,
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("generate", "{model}", "{method}", "seed{seed}-accentuations"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} generate --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--method {wildcards.method} --seed {wildcards.seed} --targets {params.targets} --marker {output:q} > {log:q} 2>&1"


rule accentuation_metrics:
    input:
        jobs=PLAN.accentuation_records,
        references=PLAN.accentuation_metrics_references,
        index=rules.index_images.output.index,
    output:
        metrics=PATHS.metrics.measure("{model}", "accentuation"),
        figure=PATHS.figures.prefix("{model}", "accentuations.png"),
    params:
        cfg=PLAN.accentuation_metrics_config(),
        run_dir=RUN,
        methods=PLAN.accentuation_methods_arg(),
        seeds=PLAN.seeds_arg(),
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("accentuation_metrics", "{model}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} accentuations --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--methods {params.methods} --seeds {params.seeds} --metrics {output.metrics:q} --figure {output.figure:q} "
        "> {log:q} 2>&1"


rule fooling:
    output:
        figure=f"{RUN}/fooling/{{model}}/fooling.png",
        table=f"{RUN}/fooling/{{model}}/fooling.md",
        summary=f"{RUN}/fooling/{{model}}/summary.csv",
    params:
        cfg=PLAN.fooling_config(),
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("fooling", "{model}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} fooling --stage-config {params.cfg:q} --out $(dirname {output.figure:q}) > {log:q} 2>&1"
