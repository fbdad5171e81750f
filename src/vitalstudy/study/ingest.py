"""Stage 5, ingestion: raw response exports -> validated tidy answers, quarantine, exclusions, report.

Participants' answers are the scarcest data in the project, so every input row ends in exactly one
place — accepted, quarantined (with one reason naming file, row and field) or excluded as a
participant (with a reason from the manifest's `exclusions`) — and the validation report's counts
add up to the rows read. Raw files are only read (SQLite databases through a private copy, so not
even a WAL checkpoint touches them); their sha256 goes into the provenance record.

Inputs (docs/contracts.md "Responses"): Google Forms CSV exports, the collection server's CSV export,
its SQLite database or JSON export, and the static HTML form's per-submission JSON files.

Rules a reviewer may want to check are stated where they are applied:
- a *row* is one submission: a CSV data line (blank lines are not rows), a JSON file, a database
  row, an element of a JSON export; a row-level failure quarantines the whole submission;
- an *answer* is one non-empty cell of a row that passed the row checks; an invalid answer is
  quarantined on its own and the participant's other answers are kept;
- a required question with no value at all makes the submission `incomplete` (a participant who
  typed only blanks into a free-text box did answer: that answer is `empty_free_text`).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import unicodedata
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vitalstudy.errors import VitalStudyError
from vitalstudy.io import atomic_path, sha256_file, write_json
from vitalstudy.provenance import Provenance

FIXED_FIELDS = ("participant_id", "subset", "started_at", "submitted_at")
RESPONSE_FORMAT = "vitalstudy.response/1"
MAX_CELL_CHARS = 10_000  # a longer cell is garbage or an attack; the row is quarantined
RAW_PREVIEW_CHARS = 2_000  # quarantine.csv shows at most this much of a rejected row
DEFAULT_SALT_ENV = "VITALSTUDY_PARTICIPANT_SALT"
SALT_FILE = ".participant_salt"
# Columns Google Forms adds on its own; dropped on reading (PII) or ignored (quiz scores).
PII_HEADER = re.compile(r"^\s*(e-?mail( address)?|ip( address)?|ip_address|username)\s*$", re.I)
IGNORED_HEADERS = {"score", "total score"}
EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
BRACKET_ID = re.compile(r"\[([^\[\]]+)\]\s*$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")

RESPONSES_COLUMNS = ["participant", "question_id", "field", "section_id", "type", "subset", "target",
                     "method", "value", "source_file", "source_row", "simulated"]
QUARANTINE_COLUMNS = ["source_file", "source_row", "level", "reason", "field", "detail", "participant",
                      "raw", "simulated"]
EXCLUSION_COLUMNS = ["participant", "reason", "detail", "source_file", "source_row", "simulated"]


# --------------------------------------------------------------------------- study design

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
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VitalStudyError(f"{path}: cannot read JSON ({exc})") from None


# --------------------------------------------------------------------------- raw submissions

@dataclass
class Problem:
    reason: str
    field: str = ""
    detail: str = ""


@dataclass
class Cell:
    column: Column
    value: object  # str from CSV; JSON scalars from JSON
    label: str  # the header or JSON key, named in messages


@dataclass
class Submission:
    """One input row, as read; nothing validated yet except what reading itself found wrong."""

    source_file: str
    source_row: int
    simulated: bool
    raw: dict = field(default_factory=dict)
    fixed: dict[str, object] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    study_id: str | None = None
    manifest_version: str | None = None
    submission_id: str | None = None
    problem: Problem | None = None
    raw_text: str = ""
    started: datetime | None = None
    submitted: datetime | None = None
    participant: str = ""


@dataclass
class InputFile:
    path: Path
    simulated: bool
    format: str = ""
    encoding: str = ""
    sha256: str = ""
    notes: list[str] = field(default_factory=list)
    side_files: dict[str, str] = field(default_factory=dict)  # path -> sha256, e.g. a SQLite -wal file

    def record(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "format": self.format, "encoding": self.encoding,
                "simulated": self.simulated, "notes": self.notes, "side_files": self.side_files}


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode an export whatever its encoding; undecodable bytes become lone surrogates / U+FFFD so that
    only the rows holding them are quarantined. Why the fallbacks: Excel on Windows saves CSV as UTF-16
    or Windows-1252; a file without a single valid UTF-8 multi-byte sequence is read as Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "surrogateescape"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace"), "utf-16"
    sample = data[:4096]
    if len(sample) >= 4:
        for offset, name in ((1, "utf-16-le"), (0, "utf-16-be")):
            if sample[offset::2].count(0) > 0.3 * len(sample) / 2:
                return data.decode(name, "replace"), name
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "surrogateescape")
    if any(ord(c) > 0x7F and not 0xDC80 <= ord(c) <= 0xDCFF for c in text):
        return text, "utf-8 with undecodable bytes"
    try:
        return data.decode("cp1252"), "cp1252 (no valid UTF-8)"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1 (no valid UTF-8)"


def _undecodable(text: str) -> bool:
    return "\ufffd" in text or any(0xDC80 <= ord(c) <= 0xDCFF for c in text)


def _printable(text: str, limit: int = RAW_PREVIEW_CHARS) -> str:
    """Text safe to write to quarantine.csv: undecodable bytes shown as U+FFFD, PII masked, bounded
    (cut before masking, with a margin so an address at the cut is still recognised)."""
    length = len(text)
    text = redact(text[:limit + 200].encode("utf-8", "replace").decode("utf-8"))
    return text if length <= limit else f"{text[:limit]}...[{length - limit} more characters]"


def redact(text: str) -> str:
    """Mask e-mail addresses and IPv4 addresses a participant typed; neither may reach an output.
    Bounded repetitions keep the patterns linear on long cells."""
    return IPV4.sub("[ip]", EMAIL.sub("[email]", text))


def sniff_delimiter(text: str) -> str:
    """`,` unless the header line holds more `;` (Excel in many European locales) or tabs (Excel's
    "Unicode text", UTF-16)."""
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=header.count)


def _csv_records(text: str, delimiter: str = ","):
    """Yield (first line number, cells or None, raw text, error) per CSV record; a malformed record
    (stray quote, unterminated quote, field over the csv module's limit) is reported, not fatal."""
    lines = re.split(r"(?<=\r\n)|(?<=\n)|(?<=\r)(?!\n)", text)
    consumed: list[str] = []

    def feed():
        for line in lines:
            if line:
                consumed.append(line)
                yield line

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    line = 0
    while True:
        error = None
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells, error = None, str(exc)
        raw, start = "".join(consumed), line + 1
        consumed.clear()
        line = reader.line_num
        yield start, cells, raw, error


def read_csv(source: InputFile, design: StudyDesign) -> list[Submission]:
    source.format = "CSV export"
    text, source.encoding = decode_bytes(source.path.read_bytes())
    delimiter = sniff_delimiter(text)
    if delimiter != ",":
        source.notes.append(f"cells separated by {delimiter!r}")
    records = iter(_csv_records(text, delimiter))
    header_record = next(records, None)
    if header_record is None or header_record[1] is None:
        problem = Problem("unreadable_file", detail="no readable header line")
        return [Submission(str(source.path), 1, source.simulated, problem=problem,
                           raw_text=text[:RAW_PREVIEW_CHARS])]
    headers = header_record[1]
    columns = [design.column(h) for h in headers]
    source.notes += [f"dropped column {h!r} (personal data)" for h, c in zip(headers, columns) if c.kind == "pii"]
    source.notes += [f"unknown column {h!r}" for h, c in zip(headers, columns) if c.kind == "unknown"]
    present = {(c.question_id, c.field) for c in columns if c.kind == "answer"}
    missing = sorted(set(design.fields) - present)
    if missing:
        source.notes.append(f"{len(missing)} question fields have no column, e.g. {missing[0][0]}:{missing[0][1]}")
    rows = []
    for line, cells, raw, error in records:
        if cells is not None and not any(c.strip() for c in cells):
            continue  # a blank line is not a row
        rows.append(_csv_submission(source, line, headers, columns, cells, raw, error))
    return rows


def _csv_submission(source, line, headers, columns, cells, raw, error) -> Submission:
    sub = Submission(str(source.path), line, source.simulated, raw_text=raw)
    if error is not None:
        reason = "cell_too_large" if "field larger" in error else "malformed_row"
        sub.problem = Problem(reason, detail=f"CSV parse error: {error}")
        return sub
    if len(cells) != len(headers):
        sub.problem = Problem("malformed_row", detail=f"{len(cells)} cells, the header has {len(headers)}")
    for header, column, value in zip(headers, columns, cells):
        if column.kind == "pii":
            continue
        if column.field != "participant_id":  # quarantine.csv shows the pseudonym instead
            sub.raw[header] = value
        if column.kind == "fixed":
            sub.fixed.setdefault(column.field, value)
        elif column.kind in ("answer", "unknown") and value.strip():
            sub.cells.append(Cell(column, value, header))
    return sub


def read_json(source: InputFile, design: StudyDesign) -> list[Submission]:
    """A static-form download (one object) or the server's admin export (a list of objects)."""
    data = source.path.read_bytes()
    try:
        text, source.encoding = decode_bytes(data)
        payload = json.loads(text)
    except ValueError as exc:
        sub = Submission(str(source.path), 1, source.simulated,
                         raw_text=data[:RAW_PREVIEW_CHARS].decode("utf-8", "replace"))
        sub.problem = Problem("malformed_row", detail=f"invalid JSON: {exc}")
        return [sub]
    if isinstance(payload, list):
        source.format = "server JSON export"
        return [payload_submission(source, n, item, design) for n, item in enumerate(payload, start=1)]
    source.format = "HTML form submission"
    return [payload_submission(source, 1, payload, design)]


def read_sqlite(source: InputFile, design: StudyDesign) -> list[Submission]:
    """The collection server's database, read from a private copy (with its -wal file, which holds
    the newest submissions until a checkpoint) so that the raw file is never opened for writing."""
    source.format, source.encoding = "collection server SQLite", "utf-8"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / source.path.name
        shutil.copyfile(source.path, copy)
        source.sha256 = sha256_file(copy)  # what was read, even if a live server writes meanwhile
        wal = Path(f"{source.path}-wal")
        if wal.exists():
            shutil.copyfile(wal, f"{copy}-wal")
            source.side_files[str(wal)] = sha256_file(f"{copy}-wal")
        try:
            with closing(sqlite3.connect(copy)) as db:
                rows = db.execute("SELECT rowid, received_at, payload FROM submissions ORDER BY rowid").fetchall()
        except sqlite3.DatabaseError as exc:
            sub = Submission(str(source.path), 1, source.simulated)
            sub.problem = Problem("unreadable_file", detail=f"not a collection-server database: {exc}")
            return [sub]
    subs = []
    for rowid, received_at, payload in rows:
        try:
            item = json.loads(payload)
        except (TypeError, ValueError) as exc:
            sub = Submission(str(source.path), rowid, source.simulated, raw_text=str(payload))
            sub.problem = Problem("malformed_row", field="payload", detail=f"invalid JSON: {exc}")
            subs.append(sub)
            continue
        if isinstance(item, dict):
            item.setdefault("received_at", received_at)
        subs.append(payload_submission(source, rowid, item, design))
    return subs


def payload_submission(source: InputFile, row: int, item, design: StudyDesign) -> Submission:
    """Turn one `vitalstudy.response/1` object into a Submission (contracts.md, Responses 2)."""
    sub = Submission(str(source.path), row, source.simulated)
    if not (isinstance(item, dict) and item.get("format") == RESPONSE_FORMAT and isinstance(item.get("answers"), dict)):
        sub.raw_text = json.dumps(item, ensure_ascii=False)[:RAW_PREVIEW_CHARS * 2]
        sub.problem = Problem("malformed_row", field="format",
                              detail=f"not a {RESPONSE_FORMAT} object with an 'answers' mapping")
        return sub
    prolific = item.get("prolific") if isinstance(item.get("prolific"), dict) else {}
    sub.study_id, sub.manifest_version = item.get("study_id"), item.get("manifest_version")
    sub.submission_id = item.get("submission_id")
    sub.fixed = {"participant_id": item.get("participant_id") or prolific.get("PROLIFIC_PID"),
                 "subset": item.get("subset"), "started_at": item.get("started_at"),
                 "submitted_at": item.get("submitted_at") or item.get("received_at")}
    for qid, answer in item["answers"].items():
        if isinstance(answer, dict):
            pairs = [(design.answer_column(qid, fld), value, f"{qid}:{fld}") for fld, value in answer.items()]
        else:
            pairs = [(design.answer_column(qid, None), answer, qid)]
        sub.cells += [Cell(col, value, label) for col, value, label in pairs if value not in (None, "")]
    sub.raw = {"subset": sub.fixed["subset"], "submitted_at": sub.fixed["submitted_at"], "answers": item["answers"]}
    return sub


READERS = {".csv": read_csv, ".json": read_json, ".sqlite": read_sqlite, ".sqlite3": read_sqlite,
           ".db": read_sqlite}


def discover(paths: list[Path], simulated: bool) -> list[InputFile]:
    """Files to read: the given files, and every file under the given folders (SQLite side files aside)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += [InputFile(p, simulated) for p in sorted(path.rglob("*")) if p.is_file()
                      and not p.name.endswith(("-wal", "-shm", "-journal")) and not p.name.startswith(".")]
        elif path.exists():
            found.append(InputFile(path, simulated))
        else:
            raise VitalStudyError(f"{path}: response input not found")
    return found


def read_file(source: InputFile, design: StudyDesign) -> list[Submission]:
    source.sha256 = sha256_file(source.path)
    reader = READERS.get(source.path.suffix.lower())
    if reader is None:
        sub = Submission(str(source.path), 1, source.simulated)
        sub.problem = Problem("unsupported_file", detail="not .csv, .json or a SQLite database (.sqlite, .db)")
        return [sub]
    return reader(source, design)


# --------------------------------------------------------------------------- values

def parse_timestamp(text: object, day_first: bool = False) -> datetime:
    """Parse the timestamp forms exports use, to an aware UTC datetime; a zone-less time is UTC.

    ISO 8601 (server, HTML form); `2026/03/01 10:12:34 AM GMT+1` (Google Forms CSV download);
    `3/1/2026 10:12:34` (Sheets, en-US, month first) or `1/3/2026` (en-GB, day first: `day_first`);
    `01.03.2026 10:12:34` (de, always day first)."""
    text = str(text).strip()
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        stamp = _parse_locale_timestamp(text, day_first)
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)


_LOCALE_TS = re.compile(
    r"(?P<a>\d{1,4})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{1,4})[ ,T]+"
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\.\d+)?\s*(?P<ampm>[AaPp]\.?\s?[Mm]\.?)?\s*"
    r"(?:(?:GMT|UTC)\s*(?P<tz>[+-]\d{1,2}(?::?\d{2})?)?|Z)?")


def _parse_locale_timestamp(text: str, day_first: bool) -> datetime:
    m = _LOCALE_TS.fullmatch(text)
    if not m:
        raise ValueError(f"unrecognised timestamp {text!r}")
    a, b, c = int(m["a"]), int(m["b"]), int(m["c"])
    if len(m["a"]) == 4:
        year, month, day = a, b, c
    elif m["sep"] == "." or day_first:
        year, month, day = c, b, a
    else:
        year, month, day = c, a, b
    hour = int(m["H"])
    if m["ampm"]:
        hour = hour % 12 + (12 if m["ampm"][0] in "Pp" else 0)
    stamp = datetime(year, month, day, hour, int(m["M"]), int(m["S"] or 0))
    if m["tz"]:
        sign, digits = (-1 if m["tz"][0] == "-" else 1), m["tz"][1:].replace(":", "")
        hours, minutes = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
        stamp = stamp.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return stamp


def infer_day_first(values: list[str]) -> bool | None:
    """Whether a file's `a/b/yyyy` dates are day-first: decided by any first number above 12 (day
    first) or second above 12 (month first); None when no date decides it, which is read month first
    (Google's en-US default). Each file is one export, so it has one locale."""
    for value in values:
        m = _LOCALE_TS.fullmatch(str(value).strip())
        if m and m["sep"] == "/" and len(m["a"]) <= 2:
            if int(m["a"]) > 12:
                return True
            if int(m["b"]) > 12:
                return False
    return None


class AnswerError(ValueError):
    """An invalid answer: `reason` is the quarantine reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def parse_likert(value: object, spec: dict) -> int:
    """A Likert answer as an integer in [min, max]. Accepted: an integer (`4`); the integer with its
    own scale label (`5 - best`, `5: best`, `5 (best)`), checked against the manifest's label; the
    label alone (`best`). Rejected: other numbers (`4.5`, `4.0`), a label that is not that point's."""
    lo, hi = spec["min"], spec["max"]
    labels = {str(k): str(v).strip().casefold() for k, v in (spec.get("labels") or {}).items()}
    if isinstance(value, bool) or isinstance(value, float):
        raise AnswerError("likert_not_integer", f"value {value!r} is not an integer")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        m = re.fullmatch(r"([+-]?\d+)(?:\s*(?:[-\u2013\u2014:=]|\()\s*(.*?)\)?)?", text)
        by_label = [int(k) for k, v in labels.items() if v == text.casefold()]
        if m:
            number = int(m[1])
            if m[2] is not None and labels.get(str(number)) != m[2].strip().casefold():
                raise AnswerError("likert_label_mismatch", f"value {text!r}: the label does not match point {number} "
                                  f"({labels.get(str(number), 'unlabelled')!r})")
        elif by_label:
            number = by_label[0]
        else:
            raise AnswerError("likert_not_integer", f"value {text[:80]!r} is not an integer on the scale")
    if not lo <= number <= hi:
        raise AnswerError("likert_out_of_range", f"value {number} is outside {lo}..{hi}")
    return number


def parse_choice(value: object, spec: dict) -> str:
    """One of the options (case-insensitive, spelled as in the manifest). Google exports checkbox
    items as `A;B` (or `A, B`): several options in a single-choice field are `multiple_choices`."""
    text = str(value).strip()
    options = {str(o).casefold(): str(o) for o in spec["options"]}
    if text.casefold() in options:
        return options[text.casefold()]
    parts = [p.strip().casefold() for p in re.split(r";|,\s", text) if p.strip()]
    if len(parts) > 1 and all(p in options for p in parts):
        raise AnswerError("multiple_choices", f"value {text[:80]!r}: several options in a single-choice field")
    raise AnswerError("invalid_choice", f"value {text[:80]!r} is not one of {list(options.values())}")


def parse_text(value: object, spec: dict) -> str:
    """Free text, NFC-normalised with whitespace collapsed and e-mail/IP addresses masked. Text with
    no letter or digit (`-`, `...`, blanks) is `empty_free_text`; over `max_length` is `text_too_long`."""
    text = " ".join(unicodedata.normalize("NFC", str(value)).split())
    if not any(ch.isalnum() for ch in text):
        raise AnswerError("empty_free_text", f"value {text[:40]!r} has no letter or digit")
    limit = spec.get("max_length")
    if limit and len(text) > limit:
        raise AnswerError("text_too_long", f"{len(text)} characters, the limit is {limit}")
    return redact(text)


PARSERS = {"likert": parse_likert, "choice": parse_choice, "text": parse_text}


# --------------------------------------------------------------------------- participants

def participant_salt(salt_env: str, out_dir: Path) -> bytes:
    """The pseudonymisation salt: from the environment variable `salt_env`, else a random salt kept in
    a file of the output folder (created once, owner-only) so that re-runs give the same pseudonyms."""
    if os.environ.get(salt_env):
        return os.environ[salt_env].encode("utf-8")
    path = out_dir / SALT_FILE
    if not path.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def pseudonym(raw_id: str, salt: bytes) -> str:
    """`p-` + 16 hex of HMAC-SHA256(salt, id); ids are compared trimmed and case-folded, since people
    retype their own id inconsistently."""
    return "p-" + hmac.new(salt, raw_id.strip().casefold().encode("utf-8"), hashlib.sha256).hexdigest()[:16]


# --------------------------------------------------------------------------- validation

@dataclass
class Answer:
    question_id: str
    field: str
    value: object


@dataclass
class Checked:
    """A row that passed the row checks: its valid answers and its rejected ones, which are committed
    to the outcome only if the row survives the duplicate checks (so every answer is counted once)."""

    sub: Submission
    answers: list[Answer]
    rejected: list[tuple[Cell, str, str]]
    cells_read: int


@dataclass
class Outcome:
    """Everything ingestion decided, in the order the outputs list it."""

    files: list[InputFile]
    accepted: list[Checked] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    exclusions: list[dict] = field(default_factory=list)
    rows_read: int = 0
    answers_read: int = 0
    answer_reasons: Counter = field(default_factory=Counter)
    row_reasons: Counter = field(default_factory=Counter)
    exclusion_reasons: Counter = field(default_factory=Counter)
    checks: Counter = field(default_factory=Counter)

    def reject_row(self, sub: Submission, problem: Problem) -> None:
        self.row_reasons[problem.reason] += 1
        self.quarantine.append(_quarantine_row(sub, "row", problem))

    def keep_row(self, checked: Checked) -> None:
        """Count a kept row's answers and quarantine its invalid ones."""
        self.answers_read += checked.cells_read
        for cell, reason, detail in checked.rejected:
            self.answer_reasons[reason] += 1
            self.quarantine.append(_quarantine_row(checked.sub, "answer", Problem(reason, cell.label, detail),
                                                   raw=str(cell.value)))

    def exclude(self, checked: Checked, problem: Problem) -> None:
        self.keep_row(checked)
        self.exclusion_reasons[problem.reason] += 1
        sub = checked.sub
        self.exclusions.append({"participant": sub.participant, "reason": problem.reason, "detail": problem.detail,
                                "source_file": sub.source_file, "source_row": sub.source_row,
                                "simulated": sub.simulated})


def _quarantine_row(sub: Submission, level: str, problem: Problem, raw: str | None = None) -> dict:
    if raw is None:
        raw = json.dumps(sub.raw, ensure_ascii=False, default=str) if sub.raw else sub.raw_text
    return {"source_file": sub.source_file, "source_row": sub.source_row, "level": level,
            "reason": problem.reason, "field": problem.field, "detail": _printable(problem.detail, 500),
            "participant": sub.participant, "raw": _printable(raw), "simulated": sub.simulated}


def row_problem(sub: Submission, design: StudyDesign, day_first: bool, salt: bytes) -> Problem | None:
    """The first row-level failure of a submission, in a fixed order, or None. Sets the participant's
    pseudonym, the subset and the timestamps on the way."""
    if sub.problem and not sub.raw:  # nothing could be parsed
        return sub.problem
    texts = {k: v for k, v in sub.fixed.items() if isinstance(v, str)} | {c.label: c.value for c in sub.cells
                                                                          if isinstance(c.value, str)}
    for label, text in texts.items():
        if len(text) > MAX_CELL_CHARS:
            return Problem("cell_too_large", label, f"{len(text)} characters (limit {MAX_CELL_CHARS})")
        if _undecodable(text):
            return Problem("encoding_error", label, "bytes that are not valid in the file's encoding")
    if sub.problem:  # a CSV row with the wrong cell count, after the checks that explain it better
        return sub.problem
    manifest = design.manifest
    if sub.study_id is not None and sub.study_id != manifest["study_id"]:
        return Problem("study_mismatch", "study_id", f"study {sub.study_id!r}, expected {manifest['study_id']!r}")
    if sub.manifest_version is not None and sub.manifest_version != manifest["manifest_version"]:
        return Problem("manifest_version_mismatch", "manifest_version",
                       f"version {sub.manifest_version!r}, current {manifest['manifest_version']!r}")
    raw_id = sub.fixed.get("participant_id")
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or not str(raw_id).strip():
        return Problem("missing_participant_id", "participant_id", "no participant id")
    sub.participant = pseudonym(str(raw_id), salt)
    subset = sub.fixed.get("subset")
    subset = str(subset).strip() if subset not in (None, "") else None
    if subset not in (manifest.get("subsets") or [None]):
        return Problem("unknown_subset", "subset",
                       f"subset {subset!r}; the study has {manifest.get('subsets') or 'none'}")
    sub.fixed["subset"] = subset
    for name in ("started_at", "submitted_at"):
        if sub.fixed.get(name) in (None, ""):
            continue
        try:
            stamp = parse_timestamp(sub.fixed[name], day_first)
        except (ValueError, OverflowError):
            return Problem("bad_timestamp", name, f"value {str(sub.fixed[name])[:60]!r} is not a date and time")
        window = design.window
        if window and not window[0] <= stamp <= window[1]:
            return Problem("outside_window", name, f"{stamp.isoformat()} is outside {window[0].isoformat()} .. "
                                                   f"{window[1].isoformat()}")
        setattr(sub, "started" if name == "started_at" else "submitted", stamp)
    return None


def check_answers(sub: Submission, design: StudyDesign) -> Checked | Problem:
    """Parse every answer of a row-valid submission, or say which required answer is missing."""
    by_key: dict[tuple, list[Cell]] = {}
    for cell in sub.cells:
        by_key.setdefault((cell.column.kind, cell.column.question_id, cell.column.field), []).append(cell)
    missing = [key for key in design.required_fields(sub.fixed["subset"]) if ("answer", *key) not in by_key]
    if missing:
        qid, fld = missing[0]
        return Problem("incomplete", f"{qid}:{fld}", f"{len(missing)} required answers missing")
    checked = Checked(sub, [], [], len(sub.cells))
    for (kind, qid, fld), cells in by_key.items():
        question = design.questions.get(qid)
        if kind == "unknown":
            reason = ("unknown_question",
                      f"column or key {cells[0].label!r} is not in manifest {design.manifest['manifest_version']}")
        elif question.get("subset") not in (None, sub.fixed["subset"]):
            reason = ("wrong_subset", f"{qid} belongs to subset {question['subset']}, not {sub.fixed['subset']}")
        elif len({str(c.value).strip() for c in cells}) > 1:
            reason = ("conflicting_duplicate_columns", f"{len(cells)} columns for {qid}:{fld} disagree")
        else:
            reason = None
        if reason:
            checked.rejected += [(cell, *reason) for cell in cells]
            continue
        checked.rejected += [(cell, "duplicate_column", f"same value as {cells[0].label!r}") for cell in cells[1:]]
        spec = design.fields[(qid, fld)]
        try:
            checked.answers.append(Answer(qid, fld, PARSERS[spec["kind"]](cells[0].value, spec)))
        except AnswerError as exc:
            checked.rejected.append((cells[0], exc.reason, exc.detail))
    return checked


def fingerprint(checked: Checked) -> str:
    sub = checked.sub
    answers = sorted((a.question_id, a.field, str(a.value)) for a in checked.answers)
    content = [sub.participant, sub.fixed["subset"], answers]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def exclusion(checked: Checked, design: StudyDesign, outcome: Outcome) -> Problem | None:
    """The participant-level exclusion rules the manifest fixed up front, in order: catch-trial
    accuracy (an unanswered or invalid catch answer counts as wrong), completion time (only where the
    input has a start time: Google Forms exports do not), straight-lining: in any named section, the
    most frequent value of the questions' primary answers (a Likert item's rating, a 2AFC item's
    choice; not the confidence) reaches `max_identical_fraction` of at least two answers."""
    sub, rules = checked.sub, design.manifest.get("exclusions") or {}
    values = {(a.question_id, a.field): a.value for a in checked.answers}
    catch = [q for q in design.manifest["questions"]
             if q.get("catch") and q.get("subset") in (None, sub.fixed["subset"])]
    if rules.get("min_catch_accuracy") is not None and catch:
        key = design.answer_key["questions"]
        right = sum(str(values.get((q["question_id"], q["fields"][0]["field"])))
                    == str(key[q["question_id"]]["correct_choice"]) for q in catch)
        if right / len(catch) < rules["min_catch_accuracy"]:
            return Problem("failed_catch_trials", detail=f"{right}/{len(catch)} correct, "
                                                         f"minimum {rules['min_catch_accuracy']:.0%}")
    bounds = rules.get("completion_seconds")
    if bounds and not (sub.started and sub.submitted):
        outcome.checks["completion_time_not_checkable"] += 1
    elif bounds:
        seconds = (sub.submitted - sub.started).total_seconds()
        if not (bounds.get("min") or 0) <= seconds <= (bounds.get("max") or float("inf")):
            return Problem("completion_time",
                           detail=f"took {seconds:.0f} s, allowed {bounds.get('min')}..{bounds.get('max')} s")
    straight = rules.get("straightlining") or {"sections": []}
    for section in straight["sections"]:
        primary = [v for (qid, fld), v in values.items() if design.questions[qid]["section_id"] == section
                   and fld == design.questions[qid]["fields"][0]["field"]
                   and design.fields[(qid, fld)]["kind"] in ("likert", "choice")]
        share = Counter(primary).most_common(1)[0][1] / len(primary) if len(primary) >= 2 else 0.0
        if share >= straight["max_identical_fraction"]:
            return Problem("straightlining", detail=f"{share:.0%} of {len(primary)} answers in {section} identical")
    return None


def validate(files: list[InputFile], design: StudyDesign, salt: bytes) -> Outcome:
    """Read and judge every row of every file (see the module docstring for the rules)."""
    outcome = Outcome(files)
    candidates: list[Checked] = []
    for source in files:
        subs = read_file(source, design)
        stamps = [s.fixed.get(k) for s in subs for k in ("started_at", "submitted_at") if s.fixed.get(k)]
        day_first = infer_day_first(stamps)
        if day_first is not None:
            source.notes.append(f"dates d/m/yyyy vs m/d/yyyy: read {'day' if day_first else 'month'} first")
        for sub in subs:
            outcome.rows_read += 1
            result = row_problem(sub, design, bool(day_first), salt) or check_answers(sub, design)
            if isinstance(result, Problem):
                outcome.reject_row(sub, result)
            else:
                candidates.append(result)
    # Duplicates: the earliest valid submission of a participant is kept (a retry after an incomplete
    # attempt is therefore kept); the same submission seen twice (server export and database) is
    # `duplicate_submission`, the same content under another id `identical_row`.
    latest = datetime.max.replace(tzinfo=timezone.utc)
    candidates.sort(key=lambda c: c.sub.submitted or latest)
    seen_ids, seen_content, seen_people = set(), set(), set()
    for checked in candidates:
        sub, content = checked.sub, fingerprint(checked)
        if sub.submission_id and sub.submission_id in seen_ids:
            outcome.reject_row(sub, Problem("duplicate_submission", "submission_id",
                                            f"submission {sub.submission_id} seen before"))
        elif content in seen_content:
            outcome.reject_row(sub, Problem("identical_row", detail="same participant and answers as an earlier row"))
        elif sub.participant in seen_people:
            outcome.reject_row(sub, Problem("duplicate_participant", "participant_id",
                                            "an earlier valid submission of this participant is kept"))
        elif excluded := exclusion(checked, design, outcome):
            outcome.exclude(checked, excluded)
        else:
            outcome.keep_row(checked)
            outcome.accepted.append(checked)
        seen_ids.add(sub.submission_id)
        seen_content.add(content)
        seen_people.add(sub.participant)
    outcome.quarantine.sort(key=lambda r: (r["source_file"], r["source_row"], r["level"] == "answer"))
    return outcome


# --------------------------------------------------------------------------- outputs

def neutralise(value: object) -> object:
    """Defuse spreadsheet formulas: a string cell starting with = + - @ tab, CR or ' gets a leading '.
    Reversible (`unneutralise`) because a value already starting with ' is always prefixed too."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def unneutralise(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def write_csv(path: Path, columns: list[str], rows: list[dict], counter: Counter) -> None:
    """Write rows atomically, neutralising formula-like cells and counting them per file."""
    counter[path.name] += 0
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            safe = {k: neutralise(row.get(k, "")) for k in columns}
            counter[path.name] += sum(safe[k] is not row.get(k, "") for k in columns)
            writer.writerow(safe)


def tidy_rows(outcome: Outcome, design: StudyDesign) -> list[dict]:
    key = design.answer_key["questions"]
    rows = []
    for checked in outcome.accepted:
        sub = checked.sub
        for a in checked.answers:
            question, truth = design.questions[a.question_id], key.get(a.question_id, {})
            rows.append({"participant": sub.participant, "question_id": a.question_id, "field": a.field,
                         "section_id": question["section_id"], "type": question["type"],
                         "subset": sub.fixed["subset"] or "", "target": truth.get("target") or "",
                         "method": truth.get("method") or "", "value": a.value, "source_file": sub.source_file,
                         "source_row": sub.source_row, "simulated": sub.simulated})
    return rows


def report(outcome: Outcome, neutralised: Counter) -> dict:
    """Counts in and out; `balanced` is the check that every row read is accounted for exactly once."""
    rows_quarantined = sum(outcome.row_reasons.values())
    rows_excluded = sum(outcome.exclusion_reasons.values())
    answers_quarantined = sum(outcome.answer_reasons.values())
    return {
        "format": "vitalstudy.validation_report/1",
        "rows": {"read": outcome.rows_read, "accepted": len(outcome.accepted), "quarantined": rows_quarantined,
                 "excluded": rows_excluded, "quarantined_by_reason": dict(sorted(outcome.row_reasons.items())),
                 "excluded_by_reason": dict(sorted(outcome.exclusion_reasons.items()))},
        "answers": {"read": outcome.answers_read, "valid": outcome.answers_read - answers_quarantined,
                    "quarantined": answers_quarantined,
                    "quarantined_by_reason": dict(sorted(outcome.answer_reasons.items())),
                    "note": "answers of rows that passed the row checks; excluded participants' answers are "
                            "valid but not in responses.csv"},
        "balanced": outcome.rows_read == len(outcome.accepted) + rows_quarantined + rows_excluded,
        "participants": {"accepted": len(outcome.accepted),
                         "simulated": sum(c.sub.simulated for c in outcome.accepted)},
        "checks": dict(outcome.checks),
        "formula_cells_neutralised": dict(neutralised),
        "files": [f.record() for f in outcome.files],
    }


def ingest(inputs: list[Path], simulated_inputs: list[Path], manifest: Path, codebook: Path, answer_key: Path,
           out_dir: Path, salt_env: str = DEFAULT_SALT_ENV, provenance: Path | None = None) -> dict:
    """Run the whole stage; returns the validation report (also written to `out_dir`)."""
    record = Provenance("05_responses.ingest", {"salt_env": salt_env, "max_cell_chars": MAX_CELL_CHARS,
                                                "simulated_inputs": [str(p) for p in simulated_inputs]})
    design = load_design(manifest, codebook, answer_key)
    files = discover(inputs, simulated=False) + discover(simulated_inputs, simulated=True)
    outcome = validate(files, design, participant_salt(salt_env, out_dir))
    neutralised: Counter = Counter()
    outputs = {name: out_dir / name for name in ("responses.csv", "quarantine.csv", "exclusions.csv",
                                                 "validation_report.json")}
    write_csv(outputs["responses.csv"], RESPONSES_COLUMNS, tidy_rows(outcome, design), neutralised)
    write_csv(outputs["quarantine.csv"], QUARANTINE_COLUMNS, outcome.quarantine, neutralised)
    write_csv(outputs["exclusions.csv"], EXCLUSION_COLUMNS, outcome.exclusions, neutralised)
    result = report(outcome, neutralised)
    write_json(outputs["validation_report.json"], result)
    for path in (manifest, codebook, answer_key):
        record.add_input(path)
    for source in files:
        record.add_input(source.path, source.sha256)
        for path, digest in source.side_files.items():
            record.add_input(path, digest)
    for path in outputs.values():
        record.add_output(path)
    record.write(provenance or out_dir / "_provenance" / "ingest.json")
    if not result["balanced"]:  # a bug, not bad input: refuse to hand on unaccounted rows
        raise VitalStudyError(f"{outputs['validation_report.json']}: row counts do not add up")
    return result
