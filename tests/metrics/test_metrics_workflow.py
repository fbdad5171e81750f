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



def _snakefile(repo: Path, tmp_path: Path) -> Path:
    """The repository's rule files as the Snakefile includes them, with the metrics outputs as `all`."""
    rules = ("common.smk", "references.smk", "generate.smk", "metrics.smk")
    text = "".join(f'include: "{repo / "workflow" / "rules" / name}"\n' for name in rules)
    text += "rule all:\n    input: PLAN.metrics_outputs()\n    default_target: True\n"
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
    result = _snakemake(repo, tmp_path, _snakefile(repo, tmp_path), repo / "config" / "config.yaml", "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = _job_counts(result.stdout)
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    from vitalstudy.config import load
    from vitalstudy.workflow import WorkflowPlan

    from vitalstudy.fv.registry import get_method

    planned = WorkflowPlan(load([repo / "config" / "config.yaml"]), report=lambda *a, **k: None, cores=2, gpus=0,
                           circuit_file=None).generation_jobs
    # accentuation methods have jobs of their own (generate_accentuation) and their own metrics
    methods = [m for m in config["generate"]["methods"] if not get_method(m).serves("accentuation")]
    assert counts["generate"] == len(planned) and {j.method for j in planned} == set(methods)
    assert counts["metrics_measure"] == len(config["models"]["targets"])
    assert counts["metrics_tables"] == 1
    # the metrics job waits for the generation job records that write its FVs
    measure = result.stdout[result.stdout.index("rule metrics_measure:"):]
    for method in methods:
        assert f"results/demo/02_fv/efficientnet_lite0/{method}/_jobs/seed0-b000.json" in measure.split("output:")[0]


TARGETS = [*CLASSES, "head_c12"]


def _results_tree(tmp_path: Path) -> Path:
    """results/t with the files stages 0-2 write (real photos as stand-in FVs), oldest first so that
    Snakemake sees every earlier stage as finished."""
    run = tmp_path / "results" / "t"
    index, skipped = build_index({"source": "bundled"}, seed=0)
    (run / "00_index").mkdir(parents=True)
    index.to_csv(run / "00_index" / "images.csv", index=False)
    skipped.to_csv(run / "00_index" / "skipped.csv", index=False)
    (run / "00_index" / "provenance.json").write_text("{}")
    refs = run / "01_references" / MODEL
    (refs / "_provenance").mkdir(parents=True)
    (refs / "_patch_scores").mkdir()
    (refs / "_patch_scores" / "head.npz").write_bytes(b"")
    references = [{"image_id": r.image_id, "path": r.path, "sha256": "",
                   "view": {"kind": "original", "crop_box": None, "flip": False}} for r in index.itertuples()]
    for target in TARGETS:
        kind = "neuron" if target.startswith("head") else "class"
        (refs / f"{target}.json").write_text(json.dumps({"target": {"kind": kind, "id": target},
                                                         "references": references}))
        (refs / f"{target}.png").write_bytes(b"")
        (refs / "_provenance" / f"{target}.json").write_text("{}")
    (refs / "_jobs").mkdir()
    (refs / "_jobs" / "b000.json").write_text("{}")  # the selection job's record (one job: every target)
    for method in ("vital", "vital_lrp"):
        for i, target in enumerate(TARGETS):
            photo = index[index["wnid"] == target]["path"].iloc[0] if target in CLASSES else index["path"][i]
            kind = "class" if target in CLASSES else "neuron"
            write_fv(run / "02_fv", MODEL, method, target, 0, fv_from_photo(photo, method, 0), kind=kind)
        (run / "02_fv" / MODEL / method / "_jobs").mkdir()
        (run / "02_fv" / MODEL / method / "_jobs" / "seed0-b000.json").write_text("{}")
    return run


@pytest.mark.slow
def test_rules_run_end_to_end_on_a_contract_tree(repo, tmp_path):
    """The per-model metric job and the tables job through Snakemake, after finished stages 0-2."""
    run = _results_tree(tmp_path)
    config = {"run": "t", "seed": 0, "device": "cpu", "images": {"source": "bundled"},
              "models": {"targets": [MODEL], "held_out": None},
              "targets": {"classes": CLASSES, "neurons": [{"layer": "head", "channels": [12]}]},
              "references": {"class_count": 2, "neuron_count": 6},
              "generate": {"methods": ["vital", "vital_lrp"], "seeds": [0]},
              "metrics": {"bootstrap": {"iterations": 10}, "fid": {"feature_model": MODEL},
                          "clip": {"download": False}, "tsne": {"perplexity": 3}}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = _snakemake(repo, tmp_path, _snakefile(repo, tmp_path), configfile, "--cores", "2")
    logs = "\n".join(p.read_text() for p in (run / "logs").rglob("*.log")) if (run / "logs").is_dir() else ""
    assert result.returncode == 0, result.stderr[-3000:] + logs[-3000:]
    assert "rule generate:" not in result.stdout and "rule select_references:" not in result.stdout

    rows = pd.read_csv(run / "03_metrics" / "metrics.csv")
    assert {"accuracy_top1", "fid", "kid", "fid_arch", "clip_top1", "auc", "mad"} <= set(rows["metric"])
    clip = rows[rows["metric"] == "clip_top1"]
    assert clip["value"].isna().all() and clip["note"].str.startswith("unavailable: ").all()
    table1 = (run / "03_metrics" / "tables" / "table1.md").read_text()
    assert "unavailable" in table1 and "Table 1, row 'ResNet50 / VITAL'" in table1 and "99.90" in table1
    assert (run / "03_metrics" / "tables" / "table3.tex").read_text().startswith(r"\begin{table}")
    assert len(pd.read_csv(run / "03_metrics" / MODEL / "tsne.csv")) == len(CLASSES) * 3
    provenance = json.loads((run / "03_metrics" / MODEL / "_provenance" / "measure.json").read_text())
    assert any(p.endswith("vital/n07920052/seed0.png") for p in provenance["inputs"])
    assert any(p.endswith("01_references/efficientnet_lite0/head_c12.json") for p in provenance["inputs"])
    assert provenance["parameters"]["config"]["generate"]["seeds"] == [0]
    assert {Path(p).name for p in provenance["outputs"]} == {f"{m}.csv" for m in (
        "accuracy", "predictions", "clip", "fid", "cosy", "path_similarity", "tsne")}
