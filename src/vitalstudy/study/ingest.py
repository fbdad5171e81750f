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

import csv
import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vitalstudy.config import schema_default
from vitalstudy.errors import VitalStudyError
from vitalstudy.io import StagedOutputs, atomic_path, persistent_secret, sha256_file, write_json
from vitalstudy.progress import progress
from vitalstudy.provenance import Provenance
from vitalstudy.study.answers import EARLIEST, PARSERS, AnswerError, infer_day_first, parse_timestamp
from vitalstudy.study.design import StudyDesign, load_design
from vitalstudy.study.exports import (MAX_CELL_CHARS, Cell, InputFile, Problem, Submission, discover, printable,
                                      read_file, undecodable)
from vitalstudy.study.safetext import (CSV_LINE_END, FORMULA_START, csv_cell, normalise_participant_id,
                                      text_problem)

SALT_FILE = ".participant_salt"

RESPONSES_COLUMNS = ["participant", "question_id", "field", "section_id", "type", "subset", "target",
                     "method", "value", "source_file", "source_row", "simulated"]
QUARANTINE_COLUMNS = ["source_file", "source_row", "level", "reason", "field", "detail", "participant",
                      "raw", "simulated"]
EXCLUSION_COLUMNS = ["participant", "reason", "detail", "source_file", "source_row", "simulated"]


# --------------------------------------------------------------------------- participants

def participant_salt(salt_env: str, out_dir: Path) -> bytes:
    """The pseudonymisation salt: from the environment variable `salt_env`, else a random salt kept in
    a file of the output folder (created once, owner-only) so that re-runs give the same pseudonyms."""
    return persistent_secret(salt_env, out_dir / SALT_FILE)


def pseudonym(raw_id: str, salt: bytes) -> str:
    """`p-` + 16 hex of HMAC-SHA256(salt, id); ids are compared as the server compares them
    (`safetext.normalise_participant_id`: NFKC, trimmed, case-folded)."""
    key = normalise_participant_id(raw_id).encode("utf-8", "surrogatepass")
    return "p-" + hmac.new(salt, key, hashlib.sha256).hexdigest()[:16]


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
            "reason": problem.reason, "field": problem.field, "detail": printable(problem.detail, 500),
            "participant": sub.participant, "raw": printable(raw), "simulated": sub.simulated}


def row_problem(sub: Submission, design: StudyDesign, day_first: bool, salt: bytes) -> Problem | None:
    """The first row-level failure of a submission, in a fixed order, or None. Sets the participant's
    pseudonym, the subset and the timestamps on the way."""
    if sub.problem and not sub.raw:  # nothing could be parsed
        return sub.problem
    for cell in sub.cells:
        if isinstance(cell.value, str) and len(cell.value) > MAX_CELL_CHARS:
            return Problem("cell_too_large", cell.label, f"{len(cell.value)} characters (limit {MAX_CELL_CHARS})")
    for name, value in sub.fixed.items():  # answers with bad text are quarantined one by one
        problem = bad_text(value)
        if problem:
            return Problem(problem[0], name, problem[1])
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
        if stamp < EARLIEST:
            return Problem("bad_timestamp", name, f"{stamp.isoformat()} is before {EARLIEST.year}")
        window = design.window
        if window and not window[0] <= stamp <= window[1]:
            return Problem("outside_window", name, f"{stamp.isoformat()} is outside {window[0].isoformat()} .. "
                                                   f"{window[1].isoformat()}")
        setattr(sub, "started" if name == "started_at" else "submitted", stamp)
    if sub.started and sub.submitted and sub.started > sub.submitted:
        return Problem("bad_timestamp", "started_at", f"{sub.started.isoformat()} is after submitted_at "
                                                      f"{sub.submitted.isoformat()}")
    return None


def bad_text(value: object) -> tuple[str, str] | None:
    """(reason, detail) when a text value may not be used: bytes the file's encoding cannot decode
    (`encoding_error`), or what the pipeline's text rule refuses (`bad_text`: lone surrogates, NUL and
    other control characters, bidirectional overrides)."""
    if not isinstance(value, str):
        return None
    if len(value) > MAX_CELL_CHARS:
        return "cell_too_large", f"{len(value)} characters (limit {MAX_CELL_CHARS})"
    if undecodable(value):
        return "encoding_error", "bytes that are not valid in the file's encoding"
    problem = text_problem(value)
    return ("bad_text", f"contains {problem}") if problem else None


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
        elif any(bad_text(c.value) for c in cells):
            reason = bad_text(next(c.value for c in cells if bad_text(c.value)))
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
        stamps = [s.fixed.get(k) for s in subs for k in ("started_at", "submitted_at") if isinstance(s.fixed.get(k), str)]
        day_first = infer_day_first(stamps)
        if day_first is not None:
            source.notes.append(f"dates d/m/yyyy vs m/d/yyyy: read {'day' if day_first else 'month'} first")
        for sub in progress(subs, desc=f"ingest {source.path.name}", unit="row"):
            outcome.rows_read += 1
            try:
                result = row_problem(sub, design, bool(day_first), salt) or check_answers(sub, design)
            except Exception as exc:  # a shape no rule foresaw: the row is quarantined, never a crash
                result = Problem("malformed_row", "(row)", f"could not be checked: {type(exc).__name__}: {exc}")
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
            outcome.reject_row(sub, Problem("identical_row", "answers", "same participant and answers as an earlier row"))
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

def write_csv(path: Path, columns: list[str], rows: list[dict], counter: Counter, name: str | None = None) -> None:
    """Write rows atomically, every cell through `safetext.csv_cell` (formulas neutralised, text that
    cannot be encoded shown as U+FFFD), counting neutralised cells per file `name` (default: its own)."""
    name = name or path.name
    counter[name] += 0
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator=CSV_LINE_END)
        writer.writerow(columns)
        for row in rows:
            values = [row.get(k, "") for k in columns]
            counter[name] += sum(isinstance(v, str) and v.startswith(FORMULA_START) for v in values)
            writer.writerow([csv_cell(v) for v in values])


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
           out_dir: Path, salt_env: str | None = None, provenance: Path | None = None) -> dict:
    """Run the whole stage; returns the validation report (also written to `out_dir`)."""
    salt_env = salt_env or schema_default("study.salt_env")  # the config's study.salt_env
    record = Provenance("05_responses.ingest", {"salt_env": salt_env, "max_cell_chars": MAX_CELL_CHARS,
                                                "simulated_inputs": [str(p) for p in simulated_inputs]})
    design = load_design(manifest, codebook, answer_key)
    files = discover(inputs, simulated=False) + discover(simulated_inputs, simulated=True)
    outcome = validate(files, design, participant_salt(salt_env, out_dir))
    neutralised: Counter = Counter()
    names = ("responses.csv", "quarantine.csv", "exclusions.csv", "validation_report.json")
    outputs = {name: out_dir / name for name in names}
    provenance = provenance or out_dir / "_provenance" / "ingest.json"
    # Every output of the run is staged and swapped in together: a run that fails leaves the
    # previous outputs exactly as they were (never a new responses.csv beside an old report).
    with StagedOutputs(out_dir) as staged:
        paths = {name: staged.path(target) for name, target in outputs.items()}
        for name, columns, rows in (("responses.csv", RESPONSES_COLUMNS, tidy_rows(outcome, design)),
                                    ("quarantine.csv", QUARANTINE_COLUMNS, outcome.quarantine),
                                    ("exclusions.csv", EXCLUSION_COLUMNS, outcome.exclusions)):
            write_csv(paths[name], columns, rows, neutralised, name)
        result = report(outcome, neutralised)
        if not result["balanced"]:  # a bug, not bad input: refuse to hand on unaccounted rows
            raise VitalStudyError(f"{outputs['validation_report.json']}: row counts do not add up; "
                                  "the previous outputs are left as they were")
        write_json(paths["validation_report.json"], result)
        for path in (manifest, codebook, answer_key):
            record.add_input(path)
        for source in files:
            if source.sha256:
                record.add_input(source.path, source.sha256)
            for path, digest in source.side_files.items():
                record.add_input(path, digest)
        for name, target in outputs.items():
            record.add_output(target, sha256_file(paths[name]))
        record.write(staged.path(provenance))
    return result
