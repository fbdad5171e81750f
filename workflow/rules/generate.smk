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
        for method in gen["methods"]:
            info = get_method(method)
            reason = info.unavailable_on(get_spec(model))
            if reason:
                print(f"note: {method} skipped for {model}: {reason}", file=sys.stderr)
                continue
            targets = [t for kind, of_kind in targets_by_kind(model) if info.serves(kind) for t in of_kind]
            size = gen["targets_per_job"]
            for seed in gen["seeds"]:
                for b, start in enumerate(range(0, len(targets), size)):
                    jobs.append((model, method, seed, f"{b:03d}", targets[start:start + size]))
    return jobs


GENERATION_JOBS = {(m, meth, str(s), b): t for m, meth, s, b, t in generation_jobs()}


def job_targets(wildcards):
    return GENERATION_JOBS[(wildcards.model, wildcards.method, wildcards.seed, wildcards.batch)]


def maco_size(model):
    return config["generate"]["maco"]["resolution"] or get_spec(model).input_size


def generation_config(wildcards):
    """A generation job's settings: only what its method reads, so that changing one method's
    settings re-runs that method's jobs alone."""
    return stage_config("models", generate=job_settings(config["generate"], wildcards.method))


def generation_inputs(wildcards, targets):
    """What a generation job reads: the targets' references (VITAL) or MACO's spectrum asset."""
    info = get_method(wildcards.method)
    if info.reads_references:
        return [f"{RUN}/01_references/{wildcards.model}/{t}.json" for t in targets]
    if info.asset == "maco_spectrum":
        return [f"{RUN}/02_fv/_assets/maco_spectrum_{maco_size(wildcards.model)}.npz"]
    return []


rule maco_spectrum:
    input:
        index=rules.index_images.output.index,
    output:
        spectrum=f"{RUN}/02_fv/_assets/maco_spectrum_{{size}}.npz",
        provenance=f"{RUN}/02_fv/_assets/_provenance/maco_spectrum_{{size}}.json",
    wildcard_constraints:
        size=r"\d+",
    params:
        images=config["generate"]["maco"]["spectrum_images"],
        seed=config["seed"],
    log:
        f"{RUN}/logs/maco_spectrum_{{size}}.log",
    shell:
        "vitalstudy maco-spectrum --index {input.index:q} --size {wildcards.size} --count {params.images} "
        "--seed {params.seed} --out {output.spectrum:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule generate:
    input:
        lambda wc: generation_inputs(wc, job_targets(wc)),
    output:
        f"{RUN}/02_fv/{{model}}/{{method}}/_jobs/seed{{seed}}-b{{batch}}.json",
    wildcard_constraints:
        seed=r"\d+",
        batch=r"\d{3}",
    params:
        cfg=generation_config,
        run_dir=RUN,
        targets=lambda wc: " ".join(job_targets(wc)),
    threads: MODEL_THREADS
    resources:
        gpu=1 if USE_GPU else 0,
    log:
        f"{RUN}/logs/generate/{{model}}/{{method}}/seed{{seed}}-b{{batch}}.log",
    shell:
        "vitalstudy generate --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--method {wildcards.method} --seed {wildcards.seed} --targets {params.targets} --marker {output:q} > {log:q} 2>&1"


def circuit_jobs():
    """(model, method, seed, wnid) for every configured circuit, on models with faithful LRP."""
    jobs = []
    for model in MODELS:
        if get_spec(model).relevance.composite is None:
            if config["targets"]["circuits"]:
                print(f"note: circuits skipped for {model}: {get_spec(model).relevance.reason}", file=sys.stderr)
            continue
        for method in (m for m in config["generate"]["methods"] if get_method(m).serves("neuron")):
            jobs += [(model, method, s, w) for s in config["generate"]["seeds"] for w in config["targets"]["circuits"]]
    return jobs


rule generate_circuit:
    input:
        circuit=f"{RUN}/01_references/{{model}}/_circuits/{{wnid}}.json",
        method_inputs=lambda wc: generation_inputs(wc, circuit_targets(wc.model, wc.wnid)),
    output:
        f"{RUN}/02_fv/{{model}}/{{method}}/_jobs/seed{{seed}}-circuit-{{wnid}}.json",
    wildcard_constraints:
        seed=r"\d+",
        wnid=r"n\d{8}",
    params:
        cfg=generation_config,
        run_dir=RUN,
        targets=lambda wc: " ".join(circuit_targets(wc.model, wc.wnid)),
    threads: MODEL_THREADS
    resources:
        gpu=1 if USE_GPU else 0,
    log:
        f"{RUN}/logs/generate/{{model}}/{{method}}/seed{{seed}}-circuit-{{wnid}}.log",
    shell:
        "vitalstudy generate --stage-config {params.cfg:q} --run-dir {params.run_dir:q} --model {wildcards.model} "
        "--method {wildcards.method} --seed {wildcards.seed} --targets {params.targets} --marker {output:q} > {log:q} 2>&1"


def generation_outputs():
    batches = [f"{RUN}/02_fv/{m}/{meth}/_jobs/seed{s}-b{b}.json" for (m, meth, s, b) in GENERATION_JOBS]
    circuits = [f"{RUN}/02_fv/{m}/{meth}/_jobs/seed{s}-circuit-{w}.json" for (m, meth, s, w) in circuit_jobs()]
    return batches + circuits


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
