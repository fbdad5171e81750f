"""The forms stage writes a provenance record of every file it read and wrote, so `vitalstudy
audit` reports a tampered stimulus, page or answer key (and a changed FV it was built from)."""

from __future__ import annotations

import json
from pathlib import Path

from forms_fixtures import full_spec, make_run, write_spec
from PIL import Image

from vitalstudy.audit import audit
from vitalstudy.cli import main


def _built(tmp_path: Path) -> tuple[Path, Path]:
    spec = full_spec()
    spec["sections"] = [s for s in spec["sections"] if s["type"] != "two_afc"]  # no model needed
    run = make_run(tmp_path)
    assert main(["forms", "--spec", str(write_spec(tmp_path, spec)), "--run", str(run)]) == 0
    return run, run / "04_study" / "teststudy"


def _problems(run: Path, root: Path) -> list[str]:
    return [f.text for f in audit(run, {"seed": 0}, root, [], plan=False) if f.problem]


def test_record_lists_every_stimulus_page_manifest_and_key(tmp_path):
    run, study = _built(tmp_path)
    record = json.loads((study / "_provenance" / "forms.json").read_text())
    outputs = set(record["outputs"])
    stimuli = sorted((study / "forms" / "stimuli").iterdir())
    assert stimuli and {str(p) for p in stimuli} <= outputs
    assert {str(study / "forms" / "manifest.json"), str(study / "private" / "answer_key.json")} <= outputs
    assert any(p.endswith(".html") for p in outputs)
    assert str(study / "private" / "blinding.key") in record["inputs"]  # read, never an output
    assert any(p.endswith("02_fv/tinynet/vital/n07920052/seed0.png") for p in record["inputs"])
    assert _problems(run, tmp_path) == []


def test_tampered_stimulus_is_reported(tmp_path):
    run, study = _built(tmp_path)
    stimulus = sorted((study / "forms" / "stimuli").iterdir())[0]
    Image.new("RGB", Image.open(stimulus).size, (255, 0, 0)).save(stimulus)
    record = (study / "_provenance" / "forms.json").relative_to(tmp_path)
    assert _problems(run, tmp_path) == [f"{record}: output {stimulus} differs from what the stage wrote (modified or tampered)"]


def test_tampered_answer_key_is_reported(tmp_path):
    run, study = _built(tmp_path)
    key = study / "private" / "answer_key.json"
    answers = json.loads(key.read_text())
    key.write_text(json.dumps({**answers, "forged": True}))
    problems = _problems(run, tmp_path)
    assert len(problems) == 1 and f"output {key} differs from what the stage wrote" in problems[0]


def test_changed_fv_after_the_forms_were_built_is_reported(tmp_path):
    run, _study = _built(tmp_path)
    fv = run / "02_fv" / "tinynet" / "vital" / "n07920052" / "seed0.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(fv)
    problems = _problems(run, tmp_path)
    assert any(f"input {fv} changed since the stage read it" in p for p in problems), problems
