# Stage 2: feature visualizations. One job = (model, method, seed, batch of targets); inside it the
# targets are optimised together, batch_size at a time. The job writes per-target PNG + sidecar
# (+ transparency PNG) and, last, a job record listing them with their sha256 (the declared output,
# so Snakemake never deletes finished targets of an interrupted job: a re-run resumes). Which jobs
# exist, and which targets each serves, is PLAN.generation_jobs (vitalstudy.workflow).


rule maco_spectrum:
    input:
        index=rules.index_images.output.index,
    output:
        spectrum=PATHS.fv.maco_spectrum("{size}"),
        provenance=PATHS.fv.maco_spectrum_provenance("{size}"),
    wildcard_constraints:
        size=r"\d+",
    params:
        images=config["generate"]["maco"]["spectrum_images"],
        seed=config["seed"],
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("maco_spectrum_{size}"),
    shell:
        "{VITALSTUDY} maco-spectrum --index {input.index:q} --size {wildcards.size} --count {params.images} "
        "--seed {params.seed} --out {output.spectrum:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule generate:
    input:
        PLAN.generation_inputs,
    output:
        PATHS.fv.job_record("{model}", "{method}", "{seed}", "{batch}"),
    wildcard_constraints:
        seed=r"\d+",
        batch=r"\d{3}",
    params:
        cfg=PLAN.generation_config,
        run_dir=RUN,
        targets=PLAN.job_targets_arg,
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("generate", "{model}", "{method}", "seed{seed}-b{batch}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} generate --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--method {wildcards.method} --seed {wildcards.seed} --targets {params.targets} --marker {output:q} > {log:q} 2>&1"


rule generate_circuit:
    input:
        circuit=PATHS.references.circuit("{model}", "{wnid}"),
        method_inputs=PLAN.circuit_generation_inputs,
    output:
        PATHS.fv.circuit_record("{model}", "{method}", "{seed}", "{wnid}"),
    wildcard_constraints:
        seed=r"\d+",
        wnid=r"n\d{8}",
    params:
        cfg=PLAN.generation_config,
        run_dir=RUN,
        targets=PLAN.circuit_job_targets_arg,
    threads: PLAN.model_threads
    resources:
        **PLAN.model_resources,
    log:
        PATHS.log("generate", "{model}", "{method}", "seed{seed}-circuit-{wnid}"),
    shell:
        "{VITALSTUDY} --gpus {resources.gpu} generate --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--method {wildcards.method} --seed {wildcards.seed} --targets {params.targets} --marker {output:q} > {log:q} 2>&1"
