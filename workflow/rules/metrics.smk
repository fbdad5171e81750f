# Stage 3: automated metrics of the FVs (vitalstudy.metrics): one job per target model (models are
# loaded once for all its metrics), then the paper-shaped tables. The FVs read are the stage-2
# contract files (02_fv/<model>/<method>/<target>/seed<k>.png + .json) of generate.methods x
# targets x generate.seeds; the rule depends on the generation job records that write them.
from vitalstudy.metrics.images import planned_images
from vitalstudy.models import get_spec

FV_ROOT = f"{RUN}/02_fv"
METRICS_DIR = f"{RUN}/03_metrics"
METRICS_CFG = stage_config("run", "models", "targets", "references", "generate", "metrics")
METRIC_TABLES = (1, 2, 3, 5)
METRIC_FILES = ("accuracy", "predictions", "clip", "fid", "cosy", "path_similarity", "tsne")


def fv_files(wildcards):
    """The generation job records that write every FV (PNG + sidecar) the metrics of {model} read.
    The job that writes an FV's PNG writes its sidecar too, so the PNGs name every record."""
    keys = planned_images(config["generate"], get_spec(wildcards.model), class_targets(config),
                          neuron_targets(config, wildcards.model))
    return fv_inputs([k.png(FV_ROOT, wildcards.model) for k in keys], "metrics")


def neuron_references(wildcards):
    """Control images of the AUC/MAD metric: the stage-1 references of each inner neuron."""
    return [f"{RUN}/01_references/{wildcards.model}/{t}.json" for t in neuron_targets(config, wildcards.model)]


rule metrics_measure:
    input:
        index=rules.index_images.output.index,
        fvs=fv_files,
        references=neuron_references,
    output:
        **{name: f"{METRICS_DIR}/{{model}}/{name}.csv" for name in METRIC_FILES if name != "tsne"},
        tsne=report(f"{METRICS_DIR}/{{model}}/tsne.csv", caption="../report/metrics_tsne.rst",
                    category="3. Metrics", labels={"model": "{model}", "table": "t-SNE"}),
        provenance=f"{METRICS_DIR}/{{model}}/_provenance/measure.json",
    params:
        cfg=METRICS_CFG,
        references=f"{RUN}/01_references/{{model}}",
        out_dir=f"{METRICS_DIR}/{{model}}",
    threads: MODEL_THREADS
    resources:
        gpu=1 if USE_GPU else 0,  # the models run on the GPU when there is one
    log:
        f"{RUN}/logs/metrics/{{model}}.log",
    shell:
        "vitalstudy metrics measure --stage-config {params.cfg:q} --model {wildcards.model} "
        "--index {input.index:q} --fv-root {FV_ROOT:q} --references-dir {params.references:q} "
        "--out-dir {params.out_dir:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule metrics_tables:
    input:
        expand(rules.metrics_measure.output.accuracy, model=MODELS),
        expand(rules.metrics_measure.output.clip, model=MODELS),
        expand(rules.metrics_measure.output.fid, model=MODELS),
        expand(rules.metrics_measure.output.cosy, model=MODELS),
        expand(rules.metrics_measure.output.path_similarity, model=MODELS),
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
    return [rules.metrics_tables.output.long, *rules.metrics_tables.output.tables,
            *rules.metrics_tables.output.renderings, *expand(rules.metrics_measure.output.tsne, model=MODELS)]
