"""Reading stage 4 and 5 files (docs/contracts.md) into the tidy frames the study figures plot.

Every frame has one row per answer with at least `participant, question_id, method, target, label,
number`; `label` is what a reader recognises the question by (the hidden class name of a free
label, the word of a Likert item, the unit id of an inner neuron) and `number` the Q number shown.

Simulated participants (`vitalstudy responses simulate`, marked by ingestion's `simulated` column)
are no evidence about people: every figure title and statistics table built here says how many of
its participants are simulated (`who`, `participants_simulated`).
"""

from __future__ import annotations

import os

import pandas as pd

from vitalstudy.errors import VitalStudyError
from vitalstudy.io import read_json
from vitalstudy.study.spec import is_class_target


class StudyFiles:
    """A study's manifest, answer key and tidy responses (stage 5 `responses.csv`)."""

    def __init__(self, manifest: str | os.PathLike, answer_key: str | os.PathLike, responses: str | os.PathLike):
        self.manifest = read_json(manifest)
        self.key = read_json(answer_key)["questions"]
        self.questions = {q["question_id"]: q for q in self.manifest["questions"]}
        frame = pd.read_csv(responses, dtype=str, keep_default_na=False)
        missing = {"participant", "question_id", "field", "type", "method", "target", "value"} - set(frame.columns)
        if missing:
            raise VitalStudyError(f"{responses}: missing columns {', '.join(sorted(missing))}")
        self.responses = frame
        flagged = frame["simulated"].str.strip().str.lower().isin(("true", "1")) if "simulated" in frame else None
        self.simulated = set(frame.loc[flagged, "participant"]) if flagged is not None else set()
        self.models = {truth.get("model") for truth in self.key.values()}

    def who(self, participants) -> str:
        """'12 participants', '12 SIMULATED participants' or '12 participants, 5 of them simulated',
        for a figure title (`participants`: the ids the figure shows)."""
        people = set(participants)
        simulated = len(people & self.simulated)
        if not simulated:
            return f"{len(people)} participants"
        if simulated == len(people):
            return f"{len(people)} SIMULATED participants"
        return f"{len(people)} participants, {simulated} of them simulated"

    def mark_simulated(self, table: pd.DataFrame, participants) -> pd.DataFrame:
        """The statistics table with the count of simulated participants behind it as a column."""
        return table.assign(participants_simulated=len(set(participants) & self.simulated))

    def label(self, question_id: str) -> str:
        truth = self.key.get(question_id, {})
        return truth.get("target_label") or self.questions[question_id].get("word") or truth.get("target") or question_id

    def answers(self, section_type: str, field: str = "value") -> pd.DataFrame:
        """Answers of one question type and field, with question label and number added."""
        rows = self.responses[(self.responses["type"] == section_type) & (self.responses["field"] == field)].copy()
        rows["label"] = [self.label(q) for q in rows["question_id"]]
        rows["number"] = [self.questions[q]["number"] for q in rows["question_id"]]
        rows["section_id"] = [self.questions[q]["section_id"] for q in rows["question_id"]]
        return rows.reset_index(drop=True)

    def section(self, section_id: str) -> dict:
        for section in self.manifest["sections"]:
            if section["section_id"] == section_id:
                return section
        known = ", ".join(s["section_id"] for s in self.manifest["sections"])
        raise VitalStudyError(f"study {self.manifest.get('study_id')}: no section {section_id!r} (sections: {known})")

    def likert(self, section_id: str) -> pd.DataFrame:
        rows = self.answers(self.section(section_id)["type"])
        rows = rows[rows["section_id"] == section_id].copy()
        rows["value"] = rows["value"].astype(int)
        return rows

    def scale(self, section_id: str) -> tuple[int, int]:
        """(min, max) of the section's Likert field, from the manifest."""
        q = next(q for q in self.manifest["questions"] if q["section_id"] == section_id)
        spec = next(f for f in q["fields"] if f["kind"] == "likert")
        return int(spec["min"]), int(spec["max"])

    def two_afc(self) -> pd.DataFrame:
        """Non-catch 2AFC trials: choice, confidence, correct (against the answer key) and unit kind."""
        choice = self.answers("two_afc", "choice")
        confidence = self.responses[(self.responses["type"] == "two_afc") & (self.responses["field"] == "confidence")]
        merged = choice.merge(confidence[["participant", "question_id", "value"]].rename(columns={"value": "confidence"}),
                              on=["participant", "question_id"], how="left")
        merged = merged[[not self.key[q].get("catch", False) for q in merged["question_id"]]].copy()
        merged["correct"] = [float(v == self.key[q]["correct_choice"]) for q, v in zip(merged["question_id"], merged["value"])]
        merged["confidence"] = pd.to_numeric(merged["confidence"], errors="coerce")
        merged["unit"] = ["class" if is_class_target(t) else "inner neuron" for t in merged["target"]]
        return merged.reset_index(drop=True)

    def demographics(self) -> tuple[pd.DataFrame, int]:
        """Demographic answers (`question_id, value`) and the number of participants in the study."""
        return self.answers("demographics"), self.responses["participant"].nunique()


def text_similarity(path: str | os.PathLike, study: StudyFiles) -> pd.DataFrame:
    """Stage 5 `text_similarity.csv` with question labels and numbers (from the manifest)."""
    frame = pd.read_csv(path, dtype={"participant": str, "question_id": str, "answer": str}, keep_default_na=False)
    frame["similarity"] = pd.to_numeric(frame["similarity"])
    frame["label"] = frame["ground_truth_label"].where(frame["ground_truth_label"] != "",
                                                        [study.label(q) for q in frame["question_id"]])
    frame["number"] = [study.questions[q]["number"] for q in frame["question_id"]]
    return frame
