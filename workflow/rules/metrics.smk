# Stage 3: automated metrics of the FVs (vitalstudy.metrics), one job per metric and target model,
# then the paper-shaped tables. Inputs are the stage-2 contract paths (02_fv/<model>/<method>/<target>/
# seed<k>.png + .json) of the methods, targets and seeds in config `metrics`.
from vitalstudy.metrics.images import planned_images
from vitalstudy.models import get_spec

FV_ROOT = f"{RUN}/02_fv"
METRICS_DIR = f"{RUN}/03_metrics"
METRICS_CFG = stage_config("run", "models", "targets", "references", "metrics")
METRIC_TABLES = (1, 2, 3, 5)


def fv_files(kind):
    """Input function: PNG + sidecar of every FV the metrics of {model} read, for class or neuron targets."""

    def files(wildcards):
        classes = class_targets(config) if kind == "class" else []
        neurons = neuron_targets(config, wildcards.model) if kind == "neuron" else []
        keys = planned_images(config["metrics"], get_spec(wildcards.model), classes, neurons)
        return [str(p) for k in keys for p in (k.png(FV_ROOT, wildcards.model), k.sidecar(FV_ROOT, wildcards.model))]

    return files


def metrics_log(name):
    return f"{RUN}/logs/metrics/{{model}}/{name}.log"


def metrics_provenance(name):
    return f"{METRICS_DIR}/{{model}}/_provenance/{name}.json"


rule metrics_accuracy:
    input:
        index=rules.index_images.output.index,
        fvs=fv_files("class"),
    output:
        rows=f"{METRICS_DIR}/{{model}}/accuracy.csv",
        predictions=f"{METRICS_DIR}/{{model}}/predictions.csv",
        provenance=metrics_provenance("accuracy"),
    params:
        cfg=METRICS_CFG,
    log:
        metrics_log("accuracy"),
    shell:
        "vitalstudy metrics accuracy --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {FV_ROOT:q} --out {output.rows:q} "
        "--predictions {output.predictions:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_clip:
    input:
        index=rules.index_images.output.index,
        fvs=fv_files("class"),
    output:
        rows=f"{METRICS_DIR}/{{model}}/clip.csv",
        provenance=metrics_provenance("clip"),
    params:
        cfg=METRICS_CFG,
    log:
        metrics_log("clip"),
    shell:
        "vitalstudy metrics clip --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {FV_ROOT:q} --out {output.rows:q} "
        "--provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_fid:
    input:
        index=rules.index_images.output.index,
        fvs=fv_files("class"),
    output:
        rows=f"{METRICS_DIR}/{{model}}/fid.csv",
        provenance=metrics_provenance("fid"),
    params:
        cfg=METRICS_CFG,
    log:
        metrics_log("fid"),
    shell:
        "vitalstudy metrics fid --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {FV_ROOT:q} --out {output.rows:q} "
        "--provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_cosy:
    input:
        index=rules.index_images.output.index,
        fvs=fv_files("neuron"),
        references=lambda wc: [f"{RUN}/01_references/{wc.model}/{t}.json" for t in neuron_targets(config, wc.model)],
    output:
        rows=f"{METRICS_DIR}/{{model}}/cosy.csv",
        provenance=metrics_provenance("cosy"),
    params:
        cfg=METRICS_CFG,
        references=f"{RUN}/01_references/{{model}}",
    log:
        metrics_log("cosy"),
    shell:
        "vitalstudy metrics cosy --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {FV_ROOT:q} --references-dir {params.references:q} "
        "--out {output.rows:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_path_similarity:
    input:
        index=rules.index_images.output.index,
        fvs=fv_files("class"),
    output:
        rows=f"{METRICS_DIR}/{{model}}/path_similarity.csv",
        provenance=metrics_provenance("path_similarity"),
    params:
        cfg=METRICS_CFG,
    log:
        metrics_log("path_similarity"),
    shell:
        "vitalstudy metrics path-similarity --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {FV_ROOT:q} --out {output.rows:q} "
        "--provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_tsne:
    input:
        index=rules.index_images.output.index,
        fvs=fv_files("class"),
    output:
        coordinates=report(f"{METRICS_DIR}/{{model}}/tsne.csv", caption="../report/metrics_tsne.rst",
                           category="3. Metrics", labels={"model": "{model}", "table": "t-SNE"}),
        provenance=metrics_provenance("tsne"),
    params:
        cfg=METRICS_CFG,
    log:
        metrics_log("tsne"),
    shell:
        "vitalstudy metrics tsne --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {FV_ROOT:q} --out {output.coordinates:q} "
        "--provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_tables:
    input:
        expand(f"{METRICS_DIR}/{{model}}/{{metric}}.csv", model=MODELS,
               metric=["accuracy", "clip", "fid", "cosy", "path_similarity"]),
    output:
        long=f"{METRICS_DIR}/metrics.csv",
        tables=[report(f"{METRICS_DIR}/tables/table{k}.csv", caption="../report/metrics_tables.rst",
                       category="3. Metrics", labels={"model": "all", "table": f"Table {k}"})
                for k in METRIC_TABLES],
        renderings=expand(f"{METRICS_DIR}/tables/table{{k}}.{{ext}}", k=METRIC_TABLES, ext=["md", "tex"]),
        provenance=f"{METRICS_DIR}/_provenance/tables.json",
    params:
        cfg=METRICS_CFG,
        out_dir=f"{METRICS_DIR}/tables",
    log:
        f"{RUN}/logs/metrics/tables.log",
    shell:
        "vitalstudy metrics tables --stage-config {params.cfg:q} --inputs {input:q} --out-long {output.long:q} "
        "--out-dir {params.out_dir:q} --provenance {output.provenance:q} > {log:q} 2>&1"


def metrics_outputs():
    """The stage's final files, for `rule all`: the tables (which need every metric) and the t-SNE coordinates."""
    return [f"{METRICS_DIR}/metrics.csv", f"{METRICS_DIR}/_provenance/tables.json"] + \
        [f"{METRICS_DIR}/tables/table{k}.{ext}" for k in METRIC_TABLES for ext in ("csv", "md", "tex")] + \
        [f"{METRICS_DIR}/{m}/tsne.csv" for m in MODELS]
