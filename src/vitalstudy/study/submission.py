"""Strict validation of a submitted response (contracts.md, "Static HTML form download").

The collection server refuses anything that does not fit the manifest exactly, so the database
holds only well-formed responses; the reason, naming the field, is returned to the browser. Every
string is checked with the pipeline's one text rule (`safetext.text_problem`), ids are matched in
full (a trailing newline is not an id), the participant id is normalised before anyone compares it,
and timestamps must be plausible.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from vitalstudy.study.answers import EARLIEST
from vitalstudy.study.safetext import is_invisible, normalise_participant_id, text_problem

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
PARTICIPANT = re.compile(r"[a-z0-9_.@+-]{1,128}")  # after normalisation (case-folded)
ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")
CLOCK_SKEW = timedelta(days=1)  # a participant's clock may be this far ahead of the server's
TOP_LEVEL = {
    "format", "submission_id", "study_id", "manifest_version", "subset", "participant_id",
    "prolific", "started_at", "submitted_at", "answers", "timings_ms",
}
PROLIFIC_KEYS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")


class InvalidSubmission(ValueError):
    """The payload does not match the manifest; the message says which field."""


def _timestamp(value, name: str, now: datetime) -> datetime:
    """An ISO 8601 time, read as UTC when it has no zone, between 2000 and a day after `now`."""
    if not isinstance(value, str) or not ISO_TIMESTAMP.fullmatch(value):
        raise InvalidSubmission(f"{name}: expected an ISO 8601 timestamp (e.g. 2026-03-01T10:00:00Z)")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSubmission(f"{name}: '{value}' is not a valid date and time") from None
    stamp = stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)
    if not EARLIEST <= stamp <= now + CLOCK_SKEW:
        raise InvalidSubmission(f"{name}: {value} is not plausible (before 2000 or in the future)")
    return stamp


def _text(value, name: str) -> None:
    """The pipeline's text rule, for every string of a payload."""
    problem = text_problem(value)
    if problem:
        raise InvalidSubmission(f"{name}: contains {problem}")


def _strings(value, name: str, depth: int = 0) -> None:
    """Apply the text rule to every string (keys included) of a decoded JSON value."""
    if depth > 8:
        raise InvalidSubmission(f"{name}: nested too deeply")
    if isinstance(value, str):
        _text(value, name)
    elif isinstance(value, dict):
        for key, item in value.items():
            if text_problem(key):
                raise InvalidSubmission(f"{name or 'payload'}: a key contains {text_problem(key)}")
            _strings(item, f"{name}.{key[:80]}" if name else key[:80], depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _strings(item, f"{name}[{i}]", depth + 1)


def _likert(value, field: dict, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not field["min"] <= value <= field["max"]:
        raise InvalidSubmission(f"{name}: expected an integer {field['min']}..{field['max']}")


def _answer(question: dict, value) -> None:
    qid, fields = question["question_id"], question["fields"]
    if question["type"] == "two_afc":
        if not isinstance(value, dict) or set(value) != {"choice", "confidence"}:
            raise InvalidSubmission(f"answers.{qid}: expected {{choice, confidence}}")
        if value["choice"] not in fields[0]["options"]:
            raise InvalidSubmission(f"answers.{qid}.choice: expected one of {fields[0]['options']}")
        _likert(value["confidence"], fields[1], f"answers.{qid}.confidence")
        return
    field = fields[0]
    if field["kind"] == "likert":
        _likert(value, field, f"answers.{qid}")
    elif field["kind"] == "text":
        if not isinstance(value, str) or not value.strip() or len(value) > field["max_length"]:
            raise InvalidSubmission(f"answers.{qid}: expected text of 1..{field['max_length']} characters")
        if is_invisible(value):
            raise InvalidSubmission(f"answers.{qid}: the text has no visible character")
    elif value not in field["options"]:
        raise InvalidSubmission(f"answers.{qid}: expected one of {field['options']}")


def validate(payload, manifest: dict, now: datetime | None = None) -> dict:
    """Return the payload if it fits the manifest, else raise InvalidSubmission; `participant_id` is
    returned normalised (`safetext.normalise_participant_id`), as it is stored and compared."""
    if not isinstance(payload, dict):
        raise InvalidSubmission("expected a JSON object")
    _strings(payload, "")
    unknown = set(payload) - TOP_LEVEL
    if unknown:
        raise InvalidSubmission(f"unknown fields: {sorted(unknown)}")
    absent = (TOP_LEVEL - {"timings_ms", "prolific"}) - set(payload)
    if absent:
        raise InvalidSubmission(f"missing fields: {sorted(absent)}")
    if payload["format"] != "vitalstudy.response/1":
        raise InvalidSubmission("format: expected 'vitalstudy.response/1'")
    if not isinstance(payload["submission_id"], str) or not UUID4.fullmatch(payload["submission_id"]):
        raise InvalidSubmission("submission_id: expected a lowercase UUID4")
    for name in ("study_id", "manifest_version"):
        if payload[name] != manifest[name]:
            raise InvalidSubmission(f"{name}: expected '{manifest[name]}' (this form is out of date?)")
    subset = payload["subset"]
    if (subset is None) != (not manifest["subsets"]) or (subset is not None and subset not in manifest["subsets"]):
        raise InvalidSubmission(f"subset: expected one of {manifest['subsets'] or [None]}")
    participant = payload["participant_id"]
    participant = normalise_participant_id(participant) if isinstance(participant, str) else None
    if participant is None or not PARTICIPANT.fullmatch(participant):
        raise InvalidSubmission("participant_id: expected 1-128 letters, digits or _.@+-")
    prolific = payload.get("prolific")
    if prolific is not None and (
        not isinstance(prolific, dict)
        or not set(prolific) <= set(PROLIFIC_KEYS)
        or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in prolific.values())
    ):
        raise InvalidSubmission(f"prolific: expected null or an object with string {PROLIFIC_KEYS}")
    now = now or datetime.now(timezone.utc)
    started = _timestamp(payload["started_at"], "started_at", now)
    if started > _timestamp(payload["submitted_at"], "submitted_at", now):
        raise InvalidSubmission("started_at: after submitted_at")
    questions = {q["question_id"]: q for q in manifest["questions"] if q["subset"] in (None, subset)}
    answers = payload["answers"]
    if not isinstance(answers, dict):
        raise InvalidSubmission("answers: expected an object")
    for qid, value in answers.items():
        if qid not in questions:
            raise InvalidSubmission(f"answers.{qid[:80]}: no such question for subset {subset}")
        _answer(questions[qid], value)
    unanswered = [qid for qid, q in questions.items() if q["required"] and qid not in answers]
    if unanswered:
        raise InvalidSubmission(f"answers: required questions unanswered: {unanswered[:5]}")
    timings = payload.get("timings_ms", {})
    if not isinstance(timings, dict) or not all(
        k in questions and isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**9
        for k, v in timings.items()
    ):
        raise InvalidSubmission("timings_ms: expected question id -> non-negative integer milliseconds")
    return {**payload, "participant_id": participant}
