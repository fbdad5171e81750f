# Stage 2: feature visualizations. One job = (model, method, seed, batch of targets); inside it the
# targets are optimised together, batch_size at a time. The job writes per-target PNG + sidecar
# (+ transparency PNG) and, last, a job record listing them with their sha256 (the declared output,
# so Snakemake never deletes finished targets of an interrupted job: a re-run resumes).


def generation_jobs():
    """[(model, method, seed, batch id, targets)] for the configured methods, skipping the
    (model, method) pairs the method cannot serve, with a note."""
    gen = config["generate"]
    jobs = []
    for model in MODELS:
        spec = get_spec(model)
        for method in gen["methods"]:
            if method == "vital_lrp" and spec.relevance.composite is None:
                print(f"note: vital_lrp skipped for {model}: {spec.relevance.reason}", file=sys.stderr)
                continue
            targets = targets_of(model)
            size = gen["targets_per_job"]
            for seed in gen["seeds"]:
                for b, start in enumerate(range(0, len(targets), size)):
                    jobs.append((model, method, seed, f"{b:03d}", targets[start:start + size]))
    return jobs


GENERATION_JOBS = {(m, meth, str(s), b): t for m, meth, s, b, t in generation_jobs()}


def job_targets(wildcards):
    return GENERATION_JOBS[(wildcards.model, wildcards.method, wildcards.seed, wildcards.batch)]


rule generate:
    input:
        references=lambda wc: [f"{RUN}/01_references/{wc.model}/{t}.json" for t in job_targets(wc)],
    output:
        f"{RUN}/02_fv/{{model}}/{{method}}/_jobs/seed{{seed}}-b{{batch}}.json",
    wildcard_constraints:
        seed=r"\d+",
        batch=r"\d{3}",
    params:
        cfg=stage_config("generate", "models"),
        run_dir=RUN,
        targets=lambda wc: " ".join(job_targets(wc)),
    threads: 1 if USE_GPU else workflow.cores  # on CPU one job uses every core
    resources:
        gpu=1 if USE_GPU else 0,
    log:
        f"{RUN}/logs/generate/{{model}}/{{method}}/seed{{seed}}-b{{batch}}.log",
    shell:
        "vitalstudy generate --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--method {wildcards.method} --seed {wildcards.seed} --targets {params.targets} --marker {output:q} > {log:q} 2>&1"


def generation_outputs():
    return [f"{RUN}/02_fv/{m}/{meth}/_jobs/seed{s}-b{b}.json" for (m, meth, s, b) in GENERATION_JOBS]


_FV_PATH = re.compile(r"/02_fv/(?P<model>[^/]+)/(?P<method>[^/]+)/(?P<target>[^/]+)/seed(?P<seed>\d+)(?:_alpha)?\.(?:png|json)$")


def fv_inputs(paths, consumer):
    """Map FV files a later stage reads to the generation job records that produce them; a file
    no configured job produces stops the workflow with a line saying what to configure."""
    records, others = set(), []
    for path in paths:
        match = _FV_PATH.search(str(path))
        if not match:
            others.append(path)
            continue
        m = match.groupdict()
        job = next((key for key, targets in GENERATION_JOBS.items()
                    if key[:3] == (m["model"], m["method"], m["seed"]) and m["target"] in targets), None)
        if job is None:
            raise WorkflowError(f"{consumer} needs {m['model']}/{m['method']}/{m['target']} seed {m['seed']}, which no "
                                f"generation job produces: add the method to generate.methods, the seed to "
                                f"generate.seeds or the target to targets")
        records.add(f"{RUN}/02_fv/{job[0]}/{job[1]}/_jobs/seed{job[2]}-b{job[3]}.json")
    return sorted(records) + others
