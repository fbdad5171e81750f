"""Stage 4 -> stage 5: forms built by the forms stage, submissions stored by the collection server
(database, JSON export, CSV export of the same people), simulated participants; ingestion accepts
every valid answer, recognises the copies, and scoring covers every free-label answer."""

from __future__ import annotations

import csv
import json
import uuid

from forms_fixtures import answer_all, build

from vitalstudy.study.ingest import ingest
from vitalstudy.study.server import Store, export_csv
from vitalstudy.study.simulate import Judgement, simulate_export
from vitalstudy.study.textsim import score


def human(manifest: dict, key: dict, number: int, subset: str) -> dict:
    """A careful participant: varied ratings, catch trials right."""
    answers = answer_all(manifest, subset)
    for n, q in enumerate(q for q in manifest["questions"] if q["question_id"] in answers):
        if q["type"] == "two_afc" and q["catch"]:
            answers[q["question_id"]]["choice"] = key["questions"][q["question_id"]]["correct_choice"]
        elif q["fields"][0]["kind"] == "likert":
            answers[q["question_id"]] = n % 5 + 1
    return {"format": "vitalstudy.response/1", "submission_id": str(uuid.uuid4()), "study_id": manifest["study_id"],
            "manifest_version": manifest["manifest_version"], "subset": subset, "participant_id": f"P{number}",
            "prolific": None, "started_at": "2026-03-01T10:00:00Z", "submitted_at": "2026-03-01T10:10:00Z",
            "answers": answers}


def test_forms_server_and_simulation_outputs_ingest_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "s")
    _, study_dir, manifest = build(tmp_path)
    forms, key_path = study_dir / "forms", study_dir / "private" / "answer_key.json"
    key = json.loads(key_path.read_text())
    raw = tmp_path / "study" / "teststudy" / "responses"
    store = Store(raw / "server.sqlite")
    for n, subset in enumerate(manifest["subsets"]):
        assert store.insert(human(manifest, key, n, subset)) == "stored"
    exported = store.export()
    (raw / "export.json").write_text(json.dumps(exported))
    with open(forms / "codebook.csv", newline="") as fh:
        (raw / "server_export.csv").write_text(export_csv(exported, list(csv.DictReader(fh))))
    judgements = {s["stimulus_id"]: Judgement(0.6, "espresso") for q in manifest["questions"]
                  for s in q["stimuli"] if s["role"] == "fv"}
    simulated = tmp_path / "results" / "simulated.csv"
    simulate_export(manifest, key, judgements, 10, seed=0, out=simulated)

    out = tmp_path / "out"
    report = ingest([raw], [simulated], forms / "manifest.json", forms / "codebook.csv", key_path, out)
    store.close()

    rows = report["rows"]
    assert rows["read"] == 3 * 3 + 10 and report["balanced"]
    assert rows["quarantined_by_reason"] == {"duplicate_submission": 3, "identical_row": 3}
    assert report["answers"]["quarantined"] == 0
    assert report["participants"]["accepted"] - report["participants"]["simulated"] == 3
    responses = list(csv.DictReader(open(out / "responses.csv", encoding="utf-8")))
    assert {r["source_file"].rsplit("/", 1)[-1] for r in responses if r["simulated"] == "False"} == {"export.json"}
    assert all(r["method"] for r in responses if r["type"] in ("likert_word", "free_label"))
    scored = score(out / "responses.csv", key_path, out / "text_similarity.csv")
    assert scored == sum(r["type"] == "free_label" for r in responses) > 0
