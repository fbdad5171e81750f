# Feature accentuations (targets.accentuations, methods serving "accentuation": generation, metrics,
# figure) and the fooling-circuit test (config section `fooling`, when given). The rules only
# declare; what they run comes from vitalstudy.fv.accentuation_plan.
from vitalstudy.fv import accentuation_plan as accent_plan

ACCENT_JOBS = {(m, meth, str(s)): t for m, meth, s, t in accent_plan.accentuation_jobs(config, MODELS)}
ACCENT_METHODS = accent_plan.accentuation_methods(config)


rule generate_accentuation:
    input:
        index=rules.index_images.output.index,  # seed images named by image id
        references=lambda wc: accent_plan.reference_inputs(RUN, config, wc.model, wc.method),
    output:
        f"{RUN}/02_fv/{{model}}/{{method}}/_jobs/seed{{seed}}-accentuations.json",
    wildcard_constraints:
        seed=r"\d+",
    params:
        cfg=lambda wc: accent_plan.generation_stage_config(config, wc.method),
        run_dir=RUN,
        targets=lambda wc: " ".join(ACCENT_JOBS[(wc.model, wc.method, wc.seed)]),
    threads: MODEL_THREADS
    resources:
        gpu=1 if USE_GPU else 0,
    log:
        f"{RUN}/logs/generate/{{model}}/{{method}}/seed{{seed}}-accentuations.log",
    shell:
        "vitalstudy generate --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--method {wildcards.method} --seed {wildcards.seed} --targets {params.targets} --marker {output:q} > {log:q} 2>&1"


rule accentuation_metrics:
    input:
        jobs=lambda wc: [accent_plan.job_record(RUN, m, meth, s) for (m, meth, s) in ACCENT_JOBS if m == wc.model],
        references=lambda wc: [f"{RUN}/01_references/{wc.model}/{t}.json"
                               for t in accent_plan.reference_targets(config, wc.model)],
        index=rules.index_images.output.index,
    output:
        metrics=f"{RUN}/03_metrics/{{model}}/accentuation.csv",
        figure=f"{RUN}/06_figures/{{model}}/accentuations.png",
    params:
        cfg=accent_plan.metrics_stage_config(config),
        run_dir=RUN,
        methods=" ".join(ACCENT_METHODS),
        seeds=" ".join(str(s) for s in config["generate"]["seeds"]),
    threads: MODEL_THREADS
    log:
        f"{RUN}/logs/accentuation_metrics/{{model}}.log",
    shell:
        "vitalstudy accentuations --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--methods {params.methods} --seeds {params.seeds} --metrics {output.metrics:q} --figure {output.figure:q} "
        "> {log:q} 2>&1"


rule fooling:
    output:
        figure=f"{RUN}/fooling/{{model}}/fooling.png",
        table=f"{RUN}/fooling/{{model}}/fooling.md",
        summary=f"{RUN}/fooling/{{model}}/summary.csv",
    params:
        cfg=json.dumps(config, sort_keys=True, default=str),
    threads: MODEL_THREADS
    log:
        f"{RUN}/logs/fooling/{{model}}.log",
    shell:
        "vitalstudy fooling --stage-config {params.cfg:q} --out $(dirname {output.figure:q}) > {log:q} 2>&1"


def accentuation_outputs():
    outputs = []
    if ACCENT_JOBS:
        outputs += [f"{RUN}/06_figures/{m}/accentuations.png" for m in dict.fromkeys(m for m, _, _ in ACCENT_JOBS)]
    if config.get("fooling", {}).get("enabled"):
        outputs.append(f"{RUN}/fooling/{config['fooling']['model']}/fooling.png")
    return outputs
