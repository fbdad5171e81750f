"""`vitalstudy plan`: job counts parsed from Snakemake's job stats, rules mapped to their stage,
generation work counted from the config, device-hours measured, extrapolated or assumed (and said so)."""

import json

import pytest

from vitalstudy.config import validate
from vitalstudy.estimate import (ASSUMED_GPU, Figure, estimate, forward_flops, generation_work, known_figures,
                                 parse_job_stats, read_figures, render, rule_stages)

STATS = """Building DAG of jobs...
Job stats:
job                  count
-----------------  -------
all                      1
generate               120
select_references     5070
total                 5191

Reasons:
"""


def _config(**generate):
    return validate({"run": "est", "seed": 0, "images": {"source": "bundled"},
                     "models": {"targets": ["efficientnet_lite0", "resnet50"]},
                     "targets": {"classes": ["n07920052", "n02123159", "n11939491"],
                                 "neurons": [{"model": "resnet50", "layer": "layer4.2", "channels": [1, 2]}]},
                     "references": {},
                     "generate": {"methods": ["vital", "fourier", "deepinversion"], "seeds": [0, 1],
                                  "vital": {"steps": 100}, "fourier": {"steps": 50},
                                  "deepinversion": {"steps": 10, "images_per_target": 4}, **generate}},
                    check_paths=False)


def test_job_stats_and_stages(repo):
    assert parse_job_stats(STATS) == {"all": 1, "generate": 120, "select_references": 5070}
    stages = rule_stages(repo / "workflow" / "rules")
    assert stages["select_references"] == "references" and stages["generate"] == "generate"
    assert stages["select_circuit_references"] == "references"  # declared by `use rule ... as`
    assert stages["metrics_measure"] == "metrics"


def test_generation_work_counts_what_the_config_plans():
    work = {(w.model, w.method): w for w in generation_work(_config())}
    assert work[("resnet50", "vital")].images == (3 + 2) * 2  # classes and its neurons, two seeds
    assert work[("efficientnet_lite0", "vital")].images == 3 * 2
    assert work[("resnet50", "deepinversion")].images == 3 * 2  # classes only
    assert work[("resnet50", "deepinversion")].images_per_target == 4
    assert work[("resnet50", "fourier")].steps == 50


def test_measured_extrapolated_and_assumed_estimates(tmp_path):
    work = {(w.model, w.method): w for w in generation_work(_config())}
    figures = [Figure("cpu:2threads", "efficientnet_lite0", "vital", target_steps_per_second=2.0, batch=2, source="x")]
    measured = estimate(work[("efficientnet_lite0", "vital")], "cpu:2threads", figures, 10.0)
    assert measured.seconds_per_target == pytest.approx(50.0) and measured.basis.startswith("measured")
    assert measured.hours == pytest.approx(50.0 * 6 / 3600)
    scaled = estimate(work[("resnet50", "vital")], "cpu:2threads", figures, 10.0)
    ratio = forward_flops("resnet50") / forward_flops("efficientnet_lite0")
    assert scaled.seconds_per_target == pytest.approx(50.0 * ratio) and "extrapolated from efficientnet_lite0" in scaled.basis
    assert estimate(work[("resnet50", "fourier")], "cpu:2threads", figures, 10.0).seconds_per_target is None
    gpu = estimate(work[("resnet50", "vital")], ASSUMED_GPU, figures, 10.0)
    assert gpu.seconds_per_target == pytest.approx(100 * 3 * forward_flops("resnet50") / 10e12)
    assert "assumed 10 TFLOP/s" in gpu.basis


def test_figures_from_a_bench_report_and_a_run_record(tmp_path):
    rows = [{"batch": 1, "target_steps_per_second": 1.0}, {"batch": 2, "target_steps_per_second": 1.5}]
    (tmp_path / "bench.json").write_text(json.dumps({"device": "cpu:2threads", "results": [
        {"model": "resnet50", "method": "vital", "rows": rows}]}))
    (tmp_path / "record.json").write_text(json.dumps({"cuda:H100|resnet50|fourier": {"batch": 8, "measurements": [
        {"batch": 8, "target_steps_per_second": 40.0}]}}))
    figures = read_figures([tmp_path / "bench.json", tmp_path / "record.json", tmp_path / "absent.json"])
    assert {(f.device, f.method, f.batch) for f in figures} == {("cpu:2threads", "vital", 2), ("cuda:H100", "fourier", 8)}
    text = render(_config(), {"generate": 4, "select_references": 9}, {"generate": "generate",
                  "select_references": "references"}, figures, 10.0, [1, 4])
    assert "  references       9  (select_references 9)" in text and "device cuda:H100:" in text and "4 devices:" in text


def test_figures_of_a_model_unknown_here_are_left_out(tmp_path, capsys):
    """A home cache holding a test's declared model ('tiny') made `vitalstudy plan` stop with
    "unknown model 'tiny'" when it picked that figure to extrapolate from."""
    (tmp_path / "cache.json").write_text(json.dumps({
        f"cpu:2threads|{model}|vital": {"measurements": [{"batch": 1, "target_steps_per_second": rate}]}
        for model, rate in (("tiny", 90.0), ("resnet50", 0.05))}))
    figures = known_figures(read_figures([tmp_path / "cache.json"]))
    assert [f.model for f in figures] == ["resnet50"]
    assert "figures of model 'tiny'" in capsys.readouterr().err
    work = next(w for w in generation_work(_config()) if w.method == "vital" and w.model == "efficientnet_lite0")
    assert estimate(work, "cpu:2threads", figures, 10.0).basis.startswith("extrapolated from resnet50")


def test_cli_prints_the_estimate(repo):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "vitalstudy.cli", "plan", "--configfile", "config/config.yaml",
                           "--no-dag", "--bench", "--devices", "1", "2"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "device cuda (assumed):" in done.stdout and "2 devices:" in done.stdout
