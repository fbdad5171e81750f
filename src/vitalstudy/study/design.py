"""The study design ingestion checks responses against: the forms stage's manifest, codebook and
answer key, and how an export's column headers map onto questions and fields."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vitalstudy.errors import VitalStudyError
from vitalstudy.io import read_json
from vitalstudy.study.answers import parse_timestamp

FIXED_FIELDS = ("participant_id", "subset", "started_at", "submitted_at")
# Columns Google Forms adds on its own; dropped on reading (PII) or ignored (quiz scores).
PII_HEADER = re.compile(r"^\s*(e-?mail( address)?|ip( address)?|ip_address|username)\s*$", re.I)
IGNORED_HEADERS = {"score", "total score"}
BRACKET_ID = re.compile(r"\[([^\[\]]+)\]\s*$")


@dataclass(frozen=True)
class Column:
    """What one export column (or JSON answer key) holds: a fixed field, a question field, or neither."""

    kind: str  # fixed | answer | pii | ignored | unknown
    question_id: str | None = None
    field: str = ""


@dataclass
class StudyDesign:
    """The forms stage's outputs that ingestion checks against (manifest, codebook, answer key)."""

    manifest: dict
    answer_key: dict
    codebook: dict[str, Column]
    questions: dict[str, dict] = field(init=False)
    fields: dict[tuple[str, str], dict] = field(init=False)
    window: tuple[datetime, datetime] | None = field(init=False)

    def __post_init__(self):
        self.questions = {q["question_id"]: q for q in self.manifest["questions"]}
        self.fields = {(q["question_id"], f["field"]): f for q in self.manifest["questions"] for f in q["fields"]}
        window = self.manifest.get("window")
        self.window = (parse_timestamp(window["start"]), parse_timestamp(window["end"])) if window else None

    def column(self, header: str) -> Column:
        """Map an export header to what it holds; the bracketed id wins over the exact codebook text."""
        header = header.replace("\ufeff", "").strip()
        bracket = BRACKET_ID.search(header)
        if bracket:
            qid, _, fld = bracket.group(1).strip().partition(":")
            if qid in FIXED_FIELDS and not fld:
                return Column("fixed", field=qid)
            return self.answer_column(qid, fld or None)
        if header in self.codebook:
            return self.codebook[header]
        if header.lower() == "timestamp":  # Google Forms' submission time
            return Column("fixed", field="submitted_at")
        if PII_HEADER.match(header):
            return Column("pii", field=header)
        if header.lower() in IGNORED_HEADERS:
            return Column("ignored", field=header)
        return Column("unknown", field=header)

    def answer_column(self, qid: str, fld: str | None) -> Column:
        question = self.questions.get(qid)
        if question is None:
            return Column("unknown", question_id=qid, field=fld or "value")
        fld = fld or question["fields"][0]["field"]
        return Column("answer" if (qid, fld) in self.fields else "unknown", question_id=qid, field=fld)

    def required_fields(self, subset: str | None) -> list[tuple[str, str]]:
        """The (question, field) pairs a participant of `subset` must answer."""
        return [(q["question_id"], f["field"]) for q in self.manifest["questions"]
                if q.get("required", True) and q.get("subset") in (None, subset)
                for f in q["fields"] if f.get("required", True)]


def load_design(manifest_path: Path, codebook_path: Path, answer_key_path: Path) -> StudyDesign:
    """The forms stage's files, checked to belong together; a wrong or missing file stops with its name."""
    manifest = read_json_file(manifest_path)
    answer_key = read_json_file(answer_key_path)
    for path, data, expected in ((manifest_path, manifest, "vitalstudy.manifest/1"),
                                 (answer_key_path, answer_key, "vitalstudy.answer_key/1")):
        if not isinstance(data, dict) or data.get("format") != expected:
            raise VitalStudyError(f"{path}: not a {expected} file; give the forms stage's output")
    if answer_key.get("manifest_version") != manifest.get("manifest_version"):
        raise VitalStudyError(f"{answer_key_path}: manifest_version {answer_key.get('manifest_version')!r} does "
                              f"not match {manifest_path} ({manifest.get('manifest_version')!r}); rebuild the forms")
    design = StudyDesign(manifest, answer_key, {})
    try:
        with open(codebook_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VitalStudyError(f"{codebook_path}: cannot read the codebook ({exc})") from None
    for n, row in enumerate(rows, start=2):
        try:
            header, qid, fld = row["column_header"].strip(), row["question_id"].strip(), row["field"].strip()
        except (KeyError, AttributeError):
            raise VitalStudyError(f"{codebook_path}, line {n}: expected columns column_header, question_id, "
                                  "field") from None
        fixed = Column("fixed", field=fld) if fld in FIXED_FIELDS else Column("unknown", field=header)
        design.codebook[header] = design.answer_column(qid, fld) if qid else fixed
    return design


def read_json_file(path: Path):
    """`vitalstudy.io.read_json`, with an unreadable file reported as an error naming it."""
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise VitalStudyError(f"{path}: cannot read JSON ({exc})") from None
