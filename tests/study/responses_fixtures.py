"""A small study written exactly as the forms stage's contract says (docs/contracts.md, stage 4),
shared by the ingestion, scoring and simulation tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

MANIFEST_VERSION = "3f9c0a1b2c4d"
LIKERT = {"field": "value", "kind": "likert", "min": 1, "max": 5, "labels": {"1": "worst", "5": "best"}}
WORDS = {"q01": ("espresso", "n07920052"), "q02": ("tabby cat", "n02123045")}
METHODS = {"a": "vital", "b": "maco"}
FREE = {"1": "vital", "2": "maco"}


def _stimulus(sid: str, role: str = "fv") -> dict:
    return {"stimulus_id": sid, "file": f"stimuli/{sid}.png", "sha256": "0" * 64, "role": role}


def build_study(root: Path, window: bool = True) -> dict[str, Path]:
    """Write manifest.json, codebook.csv and answer_key.json under `root`; return their paths."""
    questions, key, stimuli = [], {}, {}
    for q, (word, wnid) in WORDS.items():
        for pos, method in METHODS.items():
            qid, sid = f"likert_word.{q}.{pos}", f"s-{q}{pos}"
            questions.append({"question_id": qid, "section_id": "likert_word", "type": "likert_word",
                              "number": int(q[1:]), "subset": None,
                              "prompt": f"How well does the image reflect '{word}'?",
                              "word": word, "fields": [LIKERT], "stimuli": [_stimulus(sid)], "catch": False,
                              "required": True})
            key[qid] = {"target": wnid, "target_label": word, "model": "efficientnet_lite0", "method": method,
                        "seed": 0, "ground_truth_label": None, "correct_choice": None}
            stimuli[sid] = {"source": f"02_fv/m/{method}/{wnid}/seed0.png", "method": method, "target": wnid, "seed": 0}
    for subset, method in FREE.items():
        qid, sid = f"free_label.q01@{subset}", f"s-free{subset}"
        questions.append({"question_id": qid, "section_id": "free_label", "type": "free_label", "number": 1,
                          "subset": subset, "prompt": "What does the image show?", "word": None,
                          "fields": [{"field": "value", "kind": "text", "max_length": 200}],
                          "stimuli": [_stimulus(sid)], "catch": False, "required": True})
        key[qid] = {"target": "n07920052", "target_label": "espresso", "model": "efficientnet_lite0", "method": method,
                    "seed": 0, "ground_truth_label": "espresso", "correct_choice": None}
        stimuli[sid] = {"source": "x.png", "method": method, "target": "n07920052", "seed": 0}
    afc_fields = [{"field": "choice", "kind": "choice", "options": ["A", "B"]},
                  {"field": "confidence", "kind": "likert", "min": 1, "max": 3}]
    for number, catch in ((1, False), (2, True)):
        qid = f"two_afc.q{number:02d}"
        questions.append({"question_id": qid, "section_id": "two_afc", "type": "two_afc", "number": number,
                          "subset": None, "prompt": "Which image activates the unit more?", "word": None,
                          "fields": afc_fields,
                          "stimuli": [_stimulus(f"s-afc{number}"), _stimulus(f"s-qa{number}", "query_a"),
                                      _stimulus(f"s-qb{number}", "query_b")],
                          "catch": catch, "required": True})
        key[qid] = {"target": "n07920052", "target_label": "espresso", "model": "efficientnet_lite0",
                    "method": None if catch else "vital", "seed": 0, "ground_truth_label": None, "correct_choice": "A"}
    questions.append({"question_id": "demographics.age", "section_id": "demographics", "type": "demographics",
                      "number": 9, "subset": None, "prompt": "Your age", "word": None,
                      "fields": [{"field": "value", "kind": "choice", "options": ["18-24", "25-34", "35-44"],
                                  "required": False}], "stimuli": [], "catch": False, "required": False})
    manifest = {
        "format": "vitalstudy.manifest/1", "study_id": "demo", "manifest_version": MANIFEST_VERSION,
        "title": "t", "welcome": "w", "instructions": "i", "subsets": ["1", "2"],
        "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-12-31T23:59:59Z"} if window else None,
        "exclusions": {"min_catch_accuracy": 1.0, "completion_seconds": {"min": 60, "max": 7200},
                       "straightlining": {"sections": ["likert_word"], "max_identical_fraction": 1.0}},
        "sections": [{"section_id": s, "type": s, "title": s, "instructions": ""}
                     for s in ("likert_word", "free_label", "two_afc", "demographics")],
        "questions": questions,
    }
    answer_key = {"format": "vitalstudy.answer_key/1", "study_id": "demo", "manifest_version": MANIFEST_VERSION,
                  "questions": key, "stimuli": stimuli}
    root.mkdir(parents=True, exist_ok=True)
    paths = {"manifest": root / "manifest.json", "answer_key": root / "answer_key.json",
             "codebook": root / "codebook.csv"}
    paths["manifest"].write_text(json.dumps(manifest, indent=1))
    paths["answer_key"].write_text(json.dumps(answer_key, indent=1))
    with open(paths["codebook"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["column_header", "question_id", "field", "section_id", "type", "subset"])
        for name in ("participant_id", "subset", "started_at", "submitted_at"):
            writer.writerow([name, "", name, "", "", ""])
        for header, qid, fld in codebook_headers(manifest):
            q = next(q for q in questions if q["question_id"] == qid)
            writer.writerow([header, qid, fld, q["section_id"], q["type"], q["subset"] or ""])
    return paths


def codebook_headers(manifest: dict) -> list[tuple[str, str, str]]:
    return [(f"{q['prompt']} [{q['question_id']}{'' if n == 0 else ':' + f['field']}]", q["question_id"], f["field"])
            for q in manifest["questions"] for n, f in enumerate(q["fields"])]


def good_answers(subset: str = "1", ratings=(4, 2, 5, 3), label: str = "a cup of espresso") -> dict:
    """A complete, valid set of answers (JSON form) for a participant of `subset`."""
    answers = {f"likert_word.{q}.{pos}": r for (q, pos), r in zip(
        [(q, p) for q in WORDS for p in METHODS], ratings)}
    answers[f"free_label.q01@{subset}"] = label
    answers["two_afc.q01"] = {"choice": "A", "confidence": 3}
    answers["two_afc.q02"] = {"choice": "A", "confidence": 2}
    answers["demographics.age"] = "25-34"
    return answers


def submission(participant: str, subset: str = "1", **overrides) -> dict:
    payload = {"format": "vitalstudy.response/1", "submission_id": f"sub-{participant}", "study_id": "demo",
               "manifest_version": MANIFEST_VERSION, "subset": subset, "participant_id": participant,
               "prolific": None, "started_at": "2026-03-01T10:00:00Z", "submitted_at": "2026-03-01T10:12:34Z",
               "answers": good_answers(subset)}
    payload.update(overrides)
    return payload


def google_rows(manifest: dict, participants: list[tuple[str, str, dict]],
                timestamp: str = "2026/03/01 10:12:34 AM GMT+1"):
    """Header and rows of a Google Forms export for (participant, subset, answers) triples."""
    headers = ["Timestamp", "Email Address", "Participant ID [participant_id]", "Subset [subset]"]
    columns = codebook_headers(manifest)
    headers += [h for h, _, _ in columns]
    rows = []
    for pid, subset, answers in participants:
        row = [timestamp, f"{pid}@example.org", pid, subset]
        for _, qid, fld in columns:
            value = answers.get(qid, "")
            row.append(str(value.get(fld, "")) if isinstance(value, dict) else ("" if fld != "value" else str(value)))
        rows.append(row)
    return headers, rows
