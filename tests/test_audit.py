"""`vitalstudy audit`: a clean run passes; a tampered output, a changed input, a changed setting and
a file that is not a provenance record are each reported on a line naming the file or key; a
re-run of the index stage reproduces its outputs byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from vitalstudy.audit import diff
from vitalstudy.cli import main
from vitalstudy.config import load
from vitalstudy.provenance import Provenance

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A run `results/demo` under tmp_path with a stage-0 index made by the real command and a
    references-like record whose parameters are the config's `references` section."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    config = load(["config/config.yaml"])
    run_dir = tmp_path / "results" / "demo"
    index = run_dir / "00_index"
    assert main(["index", "--images", json.dumps(config["images"]), "--seed", str(config["seed"]),
                 "--out", "results/demo/00_index/images.csv", "--skipped", "results/demo/00_index/skipped.csv",
                 "--provenance", "results/demo/00_index/provenance.json"]) == 0
    selected = run_dir / "01_references" / "m" / "n07920052.json"
    selected.parent.mkdir(parents=True)
    selected.write_text('{"references": []}\n')
    record = Provenance("references", {"model": "m", "target": "n07920052", "references": config["references"]},
                        seed=config["seed"])
    record.add_input("results/demo/00_index/images.csv")
    record.add_output("results/demo/01_references/m/n07920052.json")
    record.write(run_dir / "01_references" / "m" / "_provenance" / "n07920052.json")
    assert (index / "provenance.json").is_file()
    return run_dir


def _audit(capsys, *extra) -> tuple[int, list[str]]:
    code = main(["audit", "results/demo", "--no-plan", *extra])
    return code, capsys.readouterr().out.splitlines()


def _problems(lines):
    return [line for line in lines if line.startswith("PROBLEM")]


def test_clean_run_passes(run, capsys):
    code, lines = _audit(capsys)
    assert code == 0, lines
    assert any("2 provenance records checked" in line for line in lines)


def test_tampered_output_is_reported(run, capsys):
    (run / "01_references" / "m" / "n07920052.json").write_text('{"references": ["forged"]}\n')
    code, lines = _audit(capsys)
    assert code == 1
    assert _problems(lines) == ["PROBLEM: results/demo/01_references/m/_provenance/n07920052.json: output "
                                "results/demo/01_references/m/n07920052.json differs from what the stage wrote "
                                "(modified or tampered)"]


def test_changed_input_and_missing_output(run, capsys):
    with open(run / "00_index" / "images.csv", "a") as fh:
        fh.write("\n")
    (run / "00_index" / "skipped.csv").unlink()
    code, lines = _audit(capsys)
    text = "\n".join(_problems(lines))
    assert code == 1
    assert "output results/demo/00_index/skipped.csv is missing" in text
    assert "input results/demo/00_index/images.csv changed since the stage read it" in text


def test_changed_config_is_reported_by_key(run, capsys):
    changed = yaml.safe_load(Path("config/config.yaml").read_text())
    changed["references"]["class_count"] = 9
    changed["seed"] = 3
    Path("config/changed.yaml").write_text(yaml.safe_dump(changed))
    code, lines = _audit(capsys, "--configfile", "config/changed.yaml")
    problems = _problems(lines)
    assert code == 1
    assert "PROBLEM: results/demo/01_references/m/_provenance/n07920052.json: setting changed since the stage ran: " \
           "references.class_count: 8 -> 9" in problems
    assert any("00_index/provenance.json: setting changed since the stage ran: seed: 0 -> 3" in p for p in problems)


def test_a_file_that_is_not_a_provenance_record(run, capsys):
    jobs = run / "02_fv" / "m" / "vital" / "_jobs"
    jobs.mkdir(parents=True)
    (jobs / "seed0-b000.json").write_text('{"outputs": []}')
    code, lines = _audit(capsys)
    assert code == 1 and "02_fv/m/vital/_jobs/seed0-b000.json: not a provenance record" in "\n".join(lines)


def test_rerun_index_reproduces_its_outputs(run, capsys):
    code, lines = _audit(capsys, "--rerun", "index")
    assert code == 0, lines
    assert sum("reproduced byte for byte" in line for line in lines) == 2


def test_diff_names_nested_keys():
    assert diff({"a": {"b": 1, "c": [1]}}, {"a": {"b": 2, "c": [1], "d": 0}}) == \
        ["a.b: 1 -> 2", 'a.d: "<absent>" -> 0']
