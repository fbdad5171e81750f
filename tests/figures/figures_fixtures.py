"""A small synthetic study that follows docs/contracts.md (stages 4 and 5): a Likert word section,
a free-label section over three subsets (Latin square), a 2AFC section with a catch trial and
demographics; answers drawn so that VITAL is rated best, as a real effect would look."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

METHODS = ["vital", "maco", "fourier"]
WORDS = [("n07920052", "espresso"), ("n02123159", "tiger cat"), ("n11939491", "daisy")]
QUALITY = {"vital": 0.85, "maco": 0.4, "fourier": 0.3}
RESPONSE_COLUMNS = ["participant", "question_id", "field", "section_id", "type", "subset", "target", "method", "value",
                    "source_file", "source_row", "simulated"]
SIM_COLUMNS = ["participant", "question_id", "target", "method", "answer", "ground_truth_label", "similarity", "encoder"]


def _question(qid, section, qtype, number, fields, subset=None, word=None, catch=False):
    return {"question_id": qid, "section_id": section, "type": qtype, "number": number, "subset": subset,
            "prompt": f"prompt {qid}", "word": word, "fields": fields, "stimuli": [], "catch": catch, "required": True}


def build_study(root: Path, participants: int = 12, seed: int = 0, model: str = "resnet50",
                simulated: int | None = None) -> dict[str, Path]:
    """Write manifest, answer key, responses.csv and text_similarity.csv under `root`; the first
    `simulated` participants (all when None) are marked simulated, as `responses simulate` rows are."""
    rng = np.random.default_rng(seed)
    likert_field = [{"field": "value", "kind": "likert", "min": 1, "max": 5}]
    afc_fields = [{"field": "choice", "kind": "choice", "options": ["A", "B"]},
                  {"field": "confidence", "kind": "likert", "min": 1, "max": 3}]
    questions, key = [], {}
    for n, (wnid, word) in enumerate(WORDS, 1):
        for pos, method in zip("abc", METHODS):
            qid = f"likert_word.q{n:02d}.{pos}"
            questions.append(_question(qid, "likert_word", "likert_word", n, likert_field, word=word))
            key[qid] = {"target": wnid, "target_label": word, "method": method, "catch": False}
    for n, (wnid, word) in enumerate(WORDS, 1):
        for s in "123":
            qid = f"free_label.q{n:02d}@{s}"
            method = METHODS[(n + int(s)) % 3]
            questions.append(_question(qid, "free_label", "free_label", n, [{"field": "value", "kind": "text"}], s))
            key[qid] = {"target": wnid, "target_label": word, "method": method, "ground_truth_label": word}
    for n in range(1, 5):
        catch = n == 4
        for s in "123":
            qid = f"two_afc.q{n:02d}@{s}"
            wnid = WORDS[(n - 1) % 3][0]
            questions.append(_question(qid, "two_afc", "two_afc", n, afc_fields, s, catch=catch))
            key[qid] = {"target": wnid if n < 3 else "head_c12", "target_label": None,
                        "method": None if catch else METHODS[(n + int(s)) % 3], "correct_choice": "AB"[n % 2],
                        "catch": catch}
    for qid, opts in (("demographics.gender", ["female", "male", "non-binary", "prefer not to say"]),
                      ("demographics.age", ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"])):
        questions.append(_question(qid, "demographics", "demographics", 0,
                                   [{"field": "value", "kind": "choice", "options": opts, "required": False}]))
    sections = [{"section_id": s, "type": s, "title": f"Section {s}"} for s in
                ("likert_word", "free_label", "two_afc", "demographics")]
    manifest = {"format": "vitalstudy.manifest/1", "study_id": "fixture", "manifest_version": "0" * 12,
                "subsets": ["1", "2", "3"], "sections": sections, "questions": questions}
    rows, sims = [], []
    by_id = {q["question_id"]: q for q in questions}
    for p in range(participants):
        pid, subset = f"p{p:03d}", str(p % 3 + 1)
        lenient = rng.normal(0, 0.4)

        def add(qid, fld, value, pid=pid, subset=subset, p=p):
            q = by_id[qid]
            rows.append({"participant": pid, "question_id": qid, "field": fld, "section_id": q["section_id"],
                         "type": q["type"], "subset": subset, "target": key.get(qid, {}).get("target", ""),
                         "method": key.get(qid, {}).get("method") or "", "value": value, "source_file": "x.csv",
                         "source_row": p + 2, "simulated": simulated is None or p < simulated})

        for q in questions:
            qid, k = q["question_id"], key.get(q["question_id"], {})
            if q["subset"] not in (None, subset):
                continue
            if q["type"] == "likert_word":
                add(qid, "value", int(np.clip(round(1 + 4 * QUALITY[k["method"]] + lenient + rng.normal(0, 0.7)), 1, 5)))
            elif q["type"] == "free_label":
                right = rng.random() < QUALITY[k["method"]]
                answer = k["ground_truth_label"] if right else "pattern"
                add(qid, "value", answer)
                sims.append({"participant": pid, "question_id": qid, "target": k["target"], "method": k["method"],
                             "answer": answer, "ground_truth_label": k["ground_truth_label"],
                             "similarity": round(float(np.clip((0.9 if right else 0.25) + rng.normal(0, 0.08), 0, 1)), 4),
                             "encoder": "fixture-encoder"})
            elif q["type"] == "two_afc":
                strength = 1.0 if k["catch"] else QUALITY[k["method"]]
                correct = rng.random() < 0.5 + 0.5 * strength
                add(qid, "choice", k["correct_choice"] if correct else "AB".replace(k["correct_choice"], ""))
                add(qid, "confidence", int(1 + min(2, np.floor(3 * strength))))
            elif rng.random() < 0.8:
                add(qid, "value", str(rng.choice(q["fields"][0]["options"])))
    paths = {"manifest": root / "forms" / "manifest.json", "answer_key": root / "private" / "answer_key.json",
             "responses": root / "responses.csv", "scores": root / "text_similarity.csv"}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    paths["manifest"].write_text(json.dumps(manifest))
    key = {qid: {**truth, "model": model} for qid, truth in key.items()}
    paths["answer_key"].write_text(json.dumps({"format": "vitalstudy.answer_key/1", "questions": key, "stimuli": {}}))
    for path, columns, data in ((paths["responses"], RESPONSE_COLUMNS, rows), (paths["scores"], SIM_COLUMNS, sims)):
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(data)
    return paths


STAGE_CONFIG = json.dumps({"seed": 0, "figures": {"bootstrap": {"iterations": 200, "confidence": 0.95}}})
