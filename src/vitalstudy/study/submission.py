"""Strict validation of a submitted response (contracts.md, "Static HTML form download").

The collection server refuses anything that does not fit the manifest exactly, so the database
holds only well-formed responses; the reasons are returned to the browser as one message.
"""

from __future__ import annotations

import re
from datetime import datetime

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PARTICIPANT = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")
TOP_LEVEL = {
    "format", "submission_id", "study_id", "manifest_version", "subset", "participant_id",
    "prolific", "started_at", "submitted_at", "answers", "timings_ms",
}
PROLIFIC_KEYS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")


class InvalidSubmission(ValueError):
    """The payload does not match the manifest; the message says which field."""


def _timestamp(value, name: str) -> None:
    if not isinstance(value, str):
        raise InvalidSubmission(f"{name}: expected an ISO 8601 timestamp")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSubmission(f"{name}: '{value}' is not an ISO 8601 timestamp") from None


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
    elif value not in field["options"]:
        raise InvalidSubmission(f"answers.{qid}: expected one of {field['options']}")


def validate(payload, manifest: dict) -> dict:
    """Return the payload if it fits the manifest, else raise InvalidSubmission."""
    if not isinstance(payload, dict):
        raise InvalidSubmission("expected a JSON object")
    unknown = set(payload) - TOP_LEVEL
    if unknown:
        raise InvalidSubmission(f"unknown fields: {sorted(unknown)}")
    absent = (TOP_LEVEL - {"timings_ms", "prolific"}) - set(payload)
    if absent:
        raise InvalidSubmission(f"missing fields: {sorted(absent)}")
    if payload["format"] != "vitalstudy.response/1":
        raise InvalidSubmission("format: expected 'vitalstudy.response/1'")
    if not isinstance(payload["submission_id"], str) or not UUID4.match(payload["submission_id"]):
        raise InvalidSubmission("submission_id: expected a lowercase UUID4")
    for name in ("study_id", "manifest_version"):
        if payload[name] != manifest[name]:
            raise InvalidSubmission(f"{name}: expected '{manifest[name]}' (this form is out of date?)")
    subset = payload["subset"]
    if (subset is None) != (not manifest["subsets"]) or (subset is not None and subset not in manifest["subsets"]):
        raise InvalidSubmission(f"subset: expected one of {manifest['subsets'] or [None]}")
    if not isinstance(payload["participant_id"], str) or not PARTICIPANT.match(payload["participant_id"]):
        raise InvalidSubmission("participant_id: expected 1-128 letters, digits or _.@+-")
    prolific = payload.get("prolific")
    if prolific is not None and (
        not isinstance(prolific, dict)
        or not set(prolific) <= set(PROLIFIC_KEYS)
        or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in prolific.values())
    ):
        raise InvalidSubmission(f"prolific: expected null or an object with string {PROLIFIC_KEYS}")
    _timestamp(payload["started_at"], "started_at")
    _timestamp(payload["submitted_at"], "submitted_at")
    questions = {q["question_id"]: q for q in manifest["questions"] if q["subset"] in (None, subset)}
    answers = payload["answers"]
    if not isinstance(answers, dict):
        raise InvalidSubmission("answers: expected an object")
    for qid, value in answers.items():
        if qid not in questions:
            raise InvalidSubmission(f"answers.{qid}: no such question for subset {subset}")
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
    return payload
