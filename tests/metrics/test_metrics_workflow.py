"""workflow/rules/metrics.smk: the DAG puts the metric jobs after generation (dry run of the demo
config), and the rules run end to end on a results tree that follows the stage 0/1/2 contracts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from metrics_helpers import CLASSES, MODEL, fv_from_photo, write_fv
from vitalstudy.data.sources import build_index



def _snakefile(repo: Path, tmp_path: Path, with_generate: bool) -> Path:
    """The repository's rule files as the lead's Snakefile will include them (+ a stand-in generate rule)."""
    text = "".join(f'include: "{repo / "workflow" / "rules" / name}"\n' for name in ("common.smk", "references.smk", "metrics.smk"))
    if with_generate:
        text += ('rule generate_stand_in:\n    input: rules.select_references.output.json\n'
                 '    output: png=f"{RUN}/02_fv/{{model}}/{{method}}/{{target}}/seed{{seed}}.png",\n'
                 '            json=f"{RUN}/02_fv/{{model}}/{{method}}/{{target}}/seed{{seed}}.json"\n'
                 '    shell: "false"\n')
    text += "rule all:\n    input: metrics_outputs()\n    default_target: True\n"
    path = tmp_path / "Snakefile"
    path.write_text(text)
    return path


def _snakemake(repo: Path, tmp_path: Path, snakefile: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(tmp_path),
                           "--configfile", str(configfile), *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _job_counts(stdout: str) -> dict[str, int]:
    counts, in_stats = {}, False
    for line in stdout.splitlines():
        if line.startswith("Job stats"):
            in_stats = True
        elif in_stats and len(line.split()) == 2 and line.split()[1].isdigit():
            counts[line.split()[0]] = int(line.split()[1])
    return counts


def test_dry_run_lists_metric_jobs_after_generation(repo, tmp_path):
    result = _snakemake(repo, tmp_path, _snakefile(repo, tmp_path, True), repo / "config" / "config.yaml", "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = _job_counts(result.stdout)
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    classes, neurons = len(config["targets"]["classes"]), len(config["targets"]["neurons"][0]["channels"])
    # EfficientNet-Lite0 has BatchNorm, so every default method applies: 4 class + 3 neuron methods
    assert counts["generate_stand_in"] == (4 * classes + 3 * neurons) * len(config["metrics"]["seeds"])
    assert counts["metrics_measure"] == len(config["models"]["targets"])
    assert counts["metrics_tables"] == 1
    assert "results/demo/02_fv/efficientnet_lite0/deepinversion/n07920052/seed0.png" in result.stdout


def _results_tree(tmp_path: Path) -> Path:
    """results/t with stage 0, 1 and 2 files written to their contracts (real photos as stand-in FVs)."""
    run = tmp_path / "results" / "t"
    index, skipped = build_index({"source": "bundled"}, seed=0)
    (run / "00_index").mkdir(parents=True)
    index.to_csv(run / "00_index" / "images.csv", index=False)
    skipped.to_csv(run / "00_index" / "skipped.csv", index=False)
    (run / "00_index" / "provenance.json").write_text("{}")
    refs = run / "01_references" / MODEL
    (refs / "_provenance").mkdir(parents=True)
    references = [{"image_id": r.image_id, "path": r.path, "sha256": "",
                   "view": {"kind": "original", "crop_box": None, "flip": False}} for r in index.itertuples()]
    (refs / "head_c12.json").write_text(json.dumps({"target": {"kind": "neuron", "id": "head_c12"},
                                                    "references": references}))
    (refs / "head_c12.png").write_bytes(b"")
    (refs / "_provenance" / "head_c12.json").write_text("{}")
    for wnid in CLASSES:
        photo = index[index["wnid"] == wnid]["path"].iloc[0]
        for method in ("vital", "maco"):
            write_fv(run / "02_fv", MODEL, method, wnid, 0, fv_from_photo(photo, method, 0))
    write_fv(run / "02_fv", MODEL, "vital_lrp", "head_c12", 0, fv_from_photo(index["path"][0], "vital_lrp", 0),
             kind="neuron")
    return run


@pytest.mark.slow
def test_rules_run_end_to_end_on_a_contract_tree(repo, tmp_path):
    """The per-model metric job and the tables job through Snakemake."""
    run = _results_tree(tmp_path)
    config = {"run": "t", "seed": 0, "device": "cpu", "images": {"source": "bundled"},
              "models": {"targets": [MODEL], "held_out": None},
              "targets": {"classes": CLASSES, "neurons": [{"layer": "head", "channels": [12]}]},
              "references": {"class_count": 2, "neuron_count": 6},
              "metrics": {"methods": {"class": ["vital", "maco"], "neuron": ["vital_lrp"]}, "seeds": [0],
                          "bootstrap": {"iterations": 10}, "fid": {"feature_model": MODEL},
                          "clip": {"download": False}, "tsne": {"perplexity": 3}}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = _snakemake(repo, tmp_path, _snakefile(repo, tmp_path, False), configfile, "--cores", "2")
    logs = "\n".join(p.read_text() for p in (run / "logs").rglob("*.log")) if (run / "logs").is_dir() else ""
    assert result.returncode == 0, result.stderr[-3000:] + logs[-3000:]

    rows = pd.read_csv(run / "03_metrics" / "metrics.csv")
    metrics = set(rows["metric"])
    assert {"accuracy_top1", "fid", "kid", "fid_arch", "clip_top1", "auc", "mad"} <= metrics
    clip = rows[rows["metric"] == "clip_top1"]
    assert clip["value"].isna().all() and clip["note"].str.startswith("unavailable: ").all()
    table1 = (run / "03_metrics" / "tables" / "table1.md").read_text()
    assert "unavailable" in table1 and "Table 1, row 'ResNet50 / VITAL'" in table1 and "99.90" in table1
    assert (run / "03_metrics" / "tables" / "table3.tex").read_text().startswith(r"\begin{table}")
    assert len(pd.read_csv(run / "03_metrics" / MODEL / "tsne.csv")) == len(CLASSES) * 3
    provenance = json.loads((run / "03_metrics" / MODEL / "_provenance" / "measure.json").read_text())
    assert any(p.endswith("vital/n07920052/seed0.png") for p in provenance["inputs"])
    assert any(p.endswith("01_references/efficientnet_lite0/head_c12.json") for p in provenance["inputs"])
    assert provenance["parameters"]["config"]["metrics"]["seeds"] == [0]
    assert {Path(p).name for p in provenance["outputs"]} == {f"{m}.csv" for m in (
        "accuracy", "predictions", "clip", "fid", "cosy", "path_similarity", "tsne")}
