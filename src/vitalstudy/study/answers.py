"""Cell values of response exports: timestamps in the formats forms tools write, the answer
parsers per question type, and masking of personal data a participant typed."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone

from vitalstudy.study.safetext import is_invisible

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)  # no web study answered before this (year 1 is a bug)
EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


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
    no letter or digit (`-`, `...`, blanks) or nothing visible (a zero-width space, a Hangul filler:
    `safetext.is_invisible`, the server's rule) is `empty_free_text`; over `max_length` is `text_too_long`."""
    text = " ".join(unicodedata.normalize("NFC", str(value)).split())
    if not any(ch.isalnum() for ch in text) or is_invisible(text):
        raise AnswerError("empty_free_text", f"value {text[:40]!r} has no letter or digit")
    limit = spec.get("max_length")
    if limit and len(text) > limit:
        raise AnswerError("text_too_long", f"{len(text)} characters, the limit is {limit}")
    return redact(text)


def checked(parse):
    """A parser that first refuses a JSON list or object where one value is expected."""
    def parse_value(value: object, spec: dict):
        if isinstance(value, (dict, list)):
            raise AnswerError("invalid_type", f"a JSON {'object' if isinstance(value, dict) else 'list'}, "
                                              "expected a single value")
        return parse(value, spec)
    return parse_value


PARSERS = {kind: checked(parse) for kind, parse in
           {"likert": parse_likert, "choice": parse_choice, "text": parse_text}.items()}

def redact(text: str) -> str:
    """Mask e-mail addresses and IPv4 addresses a participant typed; neither may reach an output.
    Bounded repetitions keep the patterns linear on long cells."""
    return IPV4.sub("[ip]", EMAIL.sub("[email]", text))
