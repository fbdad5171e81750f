# Stage 6: the paper's figures (PNG + PDF) with a statistics or data table beside each, drawn by
# `vitalstudy figures KIND` (vitalstudy.figures). Study figures read stage 4 (manifest, answer key)
# and stage 5 (tidy responses, text similarity); which ones a study gets follows the section types
# of its spec. Model figures read stage 2 images and stage 3 t-SNE coordinates. Every call also
# writes 06_figures/<study|model>/_provenance/<name>.json. Reads config keys seed, figures,
# generate.methods, generate.seeds, study.studies (and metrics, when the metrics stage is present).
from vitalstudy.metrics.images import FVKey
from vitalstudy.study.spec import load_spec

FIGURES = f"{RUN}/06_figures"
FIGURES_CFG = stage_config("figures")
FIGURE_STUDY = f"{RUN}/04_study/{{study}}"
FIGURE_RESPONSES = f"{RUN}/05_responses/{{study}}"
FIGURE_CATEGORY = "6. Figures"


def _figure(prefix, caption, subcategory, questions=False, table="stats", table_caption=None):
    """Output files of one `vitalstudy figures` call with PREFIX: figure(s) and table in the report."""
    name = prefix.rsplit("/", 1)[-1]
    files = {
        "png": report(f"{prefix}.png", caption=f"../report/figure_{caption}.rst", category=FIGURE_CATEGORY,
                      subcategory=subcategory, labels={"figure": name, "view": "summary"}),
        "pdf": f"{prefix}.pdf",
        "table": report(f"{prefix}_{table}.csv", caption=f"../report/{table_caption or 'table_' + table}.rst", category=FIGURE_CATEGORY,
                        subcategory=subcategory, labels={"figure": name, "view": f"{table} table"}),
        "provenance": prefix.rsplit("/", 1)[0] + f"/_provenance/{name}.json",
    }
    if questions:
        files["questions_png"] = report(f"{prefix}_questions.png", caption=f"../report/figure_{caption}_questions.rst",
                                        category=FIGURE_CATEGORY, subcategory=subcategory,
                                        labels={"figure": name, "view": "per question"})
        files["questions_pdf"] = f"{prefix}_questions.pdf"
    return files


STUDY_INPUTS = dict(manifest=f"{FIGURE_STUDY}/forms/manifest.json", answer_key=f"{FIGURE_STUDY}/private/answer_key.json",
                    responses=f"{FIGURE_RESPONSES}/responses.csv")
STUDY_ARGS = ("--stage-config {params.cfg:q} --manifest {input.manifest:q} --answer-key {input.answer_key:q} "
              "--responses {input.responses:q}")


wildcard_constraints:
    section=r"likert_[A-Za-z0-9_-]+",


rule figure_likert:
    input:
        **STUDY_INPUTS,
    output:
        **_figure(f"{FIGURES}/{{study}}/{{section}}", "likert", "{study}", questions=True),
    params:
        cfg=FIGURES_CFG,
        prefix=f"{FIGURES}/{{study}}/{{section}}",
    log:
        f"{RUN}/logs/figures/{{study}}/{{section}}.log",
    shell:
        "vitalstudy figures likert " + STUDY_ARGS + " --section {wildcards.section:q} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_free_label:
    input:
        **STUDY_INPUTS,
        scores=f"{FIGURE_RESPONSES}/text_similarity.csv",
    output:
        **_figure(f"{FIGURES}/{{study}}/free_label", "similarity", "{study}", questions=True),
    params:
        cfg=FIGURES_CFG,
        prefix=f"{FIGURES}/{{study}}/free_label",
    log:
        f"{RUN}/logs/figures/{{study}}/free_label.log",
    shell:
        "vitalstudy figures similarity " + STUDY_ARGS + " --scores {input.scores:q} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_two_afc:
    input:
        **STUDY_INPUTS,
    output:
        **_figure(f"{FIGURES}/{{study}}/two_afc", "two_afc", "{study}"),
    params:
        cfg=FIGURES_CFG,
        prefix=f"{FIGURES}/{{study}}/two_afc",
    log:
        f"{RUN}/logs/figures/{{study}}/two_afc.log",
    shell:
        "vitalstudy figures two-afc " + STUDY_ARGS + " --out {params.prefix:q} > {log:q} 2>&1"


rule figure_demographics:
    input:
        **STUDY_INPUTS,
    output:
        **_figure(f"{FIGURES}/{{study}}/demographics", "demographics", "{study}"),
    params:
        cfg=FIGURES_CFG,
        prefix=f"{FIGURES}/{{study}}/demographics",
    log:
        f"{RUN}/logs/figures/{{study}}/demographics.log",
    shell:
        "vitalstudy figures demographics " + STUDY_ARGS + " --out {params.prefix:q} > {log:q} 2>&1"


rule figure_tsne:
    input:
        coordinates=f"{RUN}/03_metrics/{{model}}/tsne.csv",
    output:
        **_figure(f"{FIGURES}/{{model}}/tsne", "tsne", "{model}", table_caption="table_tsne"),
    params:
        cfg=FIGURES_CFG,
        prefix=f"{FIGURES}/{{model}}/tsne",
    log:
        f"{RUN}/logs/figures/{{model}}/tsne.log",
    shell:
        "vitalstudy figures tsne --stage-config {params.cfg:q} --coordinates {input.coordinates:q} "
        "--model {wildcards.model} --out {params.prefix:q} > {log:q} 2>&1"


GRID_SEED = config["figures"]["grid"]["seed"]
GRID_SEED = config["generate"]["seeds"][0] if GRID_SEED is None else GRID_SEED
GRID_METHODS = config["generate"]["methods"]


def grid_targets(model, kind):
    return class_targets(config) if kind == "classes" else neuron_targets(config, model)


def grid_images(wildcards):
    """Generation job records of every image the grid shows (so the grid waits for them). A
    (method, target) no job plans (DeepInversion on an inner neuron or a ViT) is an empty cell."""
    planned = {(m, t) for (model, m, s, _), targets in GENERATION_JOBS.items()
               if model == wildcards.model and s == str(GRID_SEED) for t in targets}
    paths = [FVKey(m, t, GRID_SEED).png(f"{RUN}/02_fv", wildcards.model) for m in GRID_METHODS
             for t in grid_targets(wildcards.model, wildcards.kind) if (m, t) in planned]
    return fv_inputs(paths, f"figure grid_{wildcards.kind}")


rule figure_grid:
    input:
        grid_images,
    output:
        **_figure(f"{FIGURES}/{{model}}/grid_{{kind}}", "grid", "{model}", table="data"),
    wildcard_constraints:
        kind="classes|neurons",
    params:
        cfg=FIGURES_CFG,
        prefix=f"{FIGURES}/{{model}}/grid_{{kind}}",
        methods=" ".join(GRID_METHODS),
        targets=lambda wc: " ".join(grid_targets(wc.model, wc.kind)),
    log:
        f"{RUN}/logs/figures/{{model}}/grid_{{kind}}.log",
    shell:
        "vitalstudy figures grid --stage-config {params.cfg:q} --fv-root {RUN:q}/02_fv --model {wildcards.model} "
        "--methods {params.methods} --seed {GRID_SEED} --targets {params.targets} --out {params.prefix:q} > {log:q} 2>&1"


def circuit_parts(model):
    """(circuit files, their generation job records at GRID_SEED, methods) of `model`, as the
    generation rules plan them (circuit_jobs: configured classes, models with faithful LRP)."""
    jobs = [(meth, w) for (m, meth, s, w) in circuit_jobs() if m == model and int(s) == GRID_SEED]
    files = [f"{RUN}/01_references/{model}/_circuits/{w}.json" for w in dict.fromkeys(w for _, w in jobs)]
    records = [f"{RUN}/02_fv/{model}/{meth}/_jobs/seed{GRID_SEED}-circuit-{w}.json" for meth, w in jobs]
    return files, records, list(dict.fromkeys(meth for meth, _ in jobs))


rule figure_circuits:
    input:
        circuits=lambda wc: circuit_parts(wc.model)[0],
        images=lambda wc: circuit_parts(wc.model)[1],
    output:
        **_figure(f"{FIGURES}/{{model}}/circuits", "circuits", "{model}", table="data"),
    params:
        cfg=FIGURES_CFG,
        prefix=f"{FIGURES}/{{model}}/circuits",
        methods=lambda wc: " ".join(circuit_parts(wc.model)[2]),
    log:
        f"{RUN}/logs/figures/{{model}}/circuits.log",
    shell:
        "vitalstudy figures circuits --stage-config {params.cfg:q} --fv-root {RUN:q}/02_fv --model {wildcards.model} "
        "--methods {params.methods} --seed {GRID_SEED} --circuits {input.circuits:q} --out {params.prefix:q} > {log:q} 2>&1"


STUDY_FIGURES = {"likert_word": None, "likert_references": None, "free_label": "free_label", "two_afc": "two_afc",
                 "demographics": "demographics"}


def study_figure_prefixes(study):
    """One figure per Likert section (named by its section id), one per other section type present."""
    names = []
    for section in load_spec(f"study/{study}/study.yaml").sections:
        name = STUDY_FIGURES[section.type] or section.section_id
        if name not in names:
            names.append(name)
    return [f"{FIGURES}/{study}/{name}" for name in names]


def figures_outputs():
    """Stage 6's final files for `rule all`: every figure PNG and its table."""
    prefixes = [p for s in config.get("study", {}).get("studies", []) for p in study_figure_prefixes(s)]
    tables = {p: "stats" for p in prefixes}
    for model in MODELS:
        if "metrics" in config:
            tables[f"{FIGURES}/{model}/tsne"] = "stats"
        for kind in ("classes", "neurons"):
            if grid_targets(model, kind):
                tables[f"{FIGURES}/{model}/grid_{kind}"] = "data"
        if circuit_parts(model)[0]:
            tables[f"{FIGURES}/{model}/circuits"] = "data"
    return [f for prefix, table in tables.items() for f in (f"{prefix}.png", f"{prefix}_{table}.csv")]
