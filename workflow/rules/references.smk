# Stage 0-1: index the source images, then choose each target's reference images.


rule index_images:
    output:
        index=f"{RUN}/00_index/images.csv",
        skipped=f"{RUN}/00_index/skipped.csv",
        provenance=f"{RUN}/00_index/provenance.json",
    params:
        images=json.dumps(config["images"], sort_keys=True),
        seed=config["seed"],
    log:
        f"{RUN}/logs/index_images.log",
    shell:
        "vitalstudy index --images {params.images:q} --seed {params.seed} --out {output.index:q} "
        "--skipped {output.skipped:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule score_patches:
    input:
        index=rules.index_images.output.index,
    output:
        f"{RUN}/01_references/{{model}}/_patch_scores/{{layer}}.npz",
    params:
        cfg=stage_config("references", "models"),
    threads: MODEL_THREADS
    log:
        f"{RUN}/logs/score_patches/{{model}}/{{layer}}.log",
    shell:
        "vitalstudy references score-patches --stage-config {params.cfg:q} --index {input.index:q} "
        "--model {wildcards.model} --layer {wildcards.layer:q} --out {output:q} > {log:q} 2>&1"


def _patch_scores(wildcards):
    """Inner-neuron targets (`<layer>_c<channel>`) need their layer's patch scores."""
    target = parse_target(wildcards.target, config["targets"]["concepts"])
    if target.kind != "neuron":
        return []
    return [f"{RUN}/01_references/{wildcards.model}/_patch_scores/{target.layer}.npz"]


rule select_references:
    input:
        index=rules.index_images.output.index,
        patch_scores=_patch_scores,
    output:
        json=f"{RUN}/01_references/{{model}}/{{target}}.json",
        montage=report(f"{RUN}/01_references/{{model}}/{{target}}.png",
                       caption="../report/references.rst", category="1. References",
                       labels={"model": "{model}", "target": "{target}"}),
        provenance=f"{RUN}/01_references/{{model}}/_provenance/{{target}}.json",
    params:
        cfg=stage_config("references", "models"),
        patch_scores=lambda wc, input: f"--patch-scores {input.patch_scores[0]}" if input.patch_scores else "",
    log:
        f"{RUN}/logs/select_references/{{model}}/{{target}}.log",
    group:
        "references"
    shell:
        "vitalstudy references select --stage-config {params.cfg:q} --index {input.index:q} "
        "--model {wildcards.model} --target {wildcards.target:q} {params.patch_scores} "
        "--out-json {output.json:q} --out-png {output.montage:q} --provenance {output.provenance:q} > {log:q} 2>&1"


def references_outputs():
    return [f"{RUN}/01_references/{m}/{t}.json" for m in MODELS for t in targets_of(m)]


checkpoint circuits:
    """The class's most relevant channels (Fig. 4); they become inner-neuron targets."""
    input:
        references=f"{RUN}/01_references/{{model}}/{{wnid}}.json",
    output:
        f"{RUN}/01_references/{{model}}/_circuits/{{wnid}}.json",
    wildcard_constraints:
        wnid=r"n\d{8}",
    params:
        cfg=stage_config("references", "models"),
    threads: MODEL_THREADS
    log:
        f"{RUN}/logs/circuits/{{model}}/{{wnid}}.log",
    shell:
        "vitalstudy references circuits --stage-config {params.cfg:q} --model {wildcards.model} "
        "--references {input.references:q} --out {output:q} > {log:q} 2>&1"


def circuit_targets(model, wnid):
    """The circuit's channel targets, known once its checkpoint has run."""
    with open(checkpoints.circuits.get(model=model, wnid=wnid).output[0]) as handle:
        return [channel["target"] for channel in json.load(handle)["channels"]]
