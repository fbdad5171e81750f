"""Reading raw response exports (CSV in any encoding and delimiter, JSON, SQLite) into
submissions, one per input row, without judging them yet; files are only ever read."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vitalstudy.errors import VitalStudyError
from vitalstudy.io import sha256_file
from vitalstudy.study.answers import redact
from vitalstudy.study.design import Column, StudyDesign

RESPONSE_FORMAT = "vitalstudy.response/1"
MAX_CELL_CHARS = 10_000  # a longer cell is garbage or an attack; the row is quarantined
RAW_PREVIEW_CHARS = 2_000  # quarantine.csv shows at most this much of a rejected row


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

    def read_bytes(self) -> bytes:
        """The file's bytes, read once; the provenance records the sha256 of exactly these."""
        data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        return data

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


def undecodable(text: str) -> bool:
    return "\ufffd" in text or any(0xDC80 <= ord(c) <= 0xDCFF for c in text)


def printable(text: str, limit: int = RAW_PREVIEW_CHARS) -> str:
    """Text safe to write to quarantine.csv: undecodable bytes shown as U+FFFD, PII masked, bounded
    (cut before masking, with a margin so an address at the cut is still recognised)."""
    length = len(text)
    text = redact(text[:limit + 200].encode("utf-8", "replace").decode("utf-8"))
    return text if length <= limit else f"{text[:limit]}...[{length - limit} more characters]"


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
    text, source.encoding = decode_bytes(source.read_bytes())
    delimiter = sniff_delimiter(text)
    if delimiter != ",":
        source.notes.append(f"cells separated by {delimiter!r}")
    records = iter(_csv_records(text, delimiter))
    header_record = next(records, None)
    if header_record is None or header_record[1] is None:
        return [file_problem(source, "no readable header line", text)]
    headers = header_record[1]
    columns = [design.column(h) for h in headers]
    if not any(c.kind in ("fixed", "answer") for c in columns):
        return [file_problem(source, f"no column of this study in the header line ({len(headers)} cells: not an "
                                     "export of this study's form, or not text)", text)]
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
        sub.problem = Problem(reason, "(row)", f"CSV parse error: {error}")
        return sub
    if len(cells) != len(headers):
        sub.problem = Problem("malformed_row", "(row)", f"{len(cells)} cells, the header has {len(headers)}")
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
    data = source.read_bytes()
    try:
        text, source.encoding = decode_bytes(data)
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        sub = Submission(str(source.path), 1, source.simulated,
                         raw_text=data[:RAW_PREVIEW_CHARS].decode("utf-8", "replace"))
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        sub.problem = Problem("malformed_row", "(file)", f"invalid JSON: {detail}")
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
            return [file_problem(source, f"not a collection-server database: {exc}")]
    subs = []
    for rowid, received_at, payload in rows:
        try:
            item = json.loads(payload)
        except (TypeError, ValueError, RecursionError) as exc:
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
    if sub.submission_id is not None and not isinstance(sub.submission_id, str):
        sub.problem = Problem("malformed_row", "submission_id", f"not a string: {str(sub.submission_id)[:60]}")
        sub.submission_id = None
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
    """Files to read: the given files, and every entry under the given folders but folders, hidden
    files and SQLite side files (a broken link or a FIFO is listed too, to be quarantined)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += [InputFile(p, simulated) for p in sorted(path.rglob("*")) if not p.is_dir()
                      and not p.name.endswith(("-wal", "-shm", "-journal")) and not p.name.startswith(".")]
        elif path.exists():
            found.append(InputFile(path, simulated))
        else:
            raise VitalStudyError(f"{path}: response input not found")
    return found


def file_problem(source: InputFile, detail: str, text: str = "") -> Submission:
    """The one quarantine row of a file that yields no submission (row 0: the file as a whole)."""
    return Submission(str(source.path), 0, source.simulated, problem=Problem("unreadable_file", "(file)", detail),
                      raw_text=text[:RAW_PREVIEW_CHARS])


def read_file(source: InputFile, design: StudyDesign) -> list[Submission]:
    """The file's submissions; each reader records the sha256 of the bytes it parsed. A file that
    cannot be read at all (not a regular file, no permission, an I/O error, or a shape no reader
    foresaw) becomes one quarantined row, and the other files are still read."""
    if not source.path.is_file():  # a broken link, a FIFO (reading it would block), a socket...
        return [file_problem(source, "not a regular file (a broken link, a pipe or a device)")]
    reader = READERS.get(source.path.suffix.lower())
    try:
        if reader is None:
            source.sha256 = sha256_file(source.path)
            sub = file_problem(source, "not .csv, .json or a SQLite database (.sqlite, .db)")
            sub.problem.reason = "unsupported_file"
            return [sub]
        return reader(source, design)
    except OSError as exc:
        return [file_problem(source, f"cannot be read: {exc.strerror or exc}")]
    except Exception as exc:  # noqa: BLE001 - one file must never stop the others
        return [file_problem(source, f"could not be parsed: {type(exc).__name__}: {exc}")]
