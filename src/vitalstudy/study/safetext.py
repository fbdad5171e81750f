"""Text rules shared by the whole response pipeline: what a text value may contain, how a participant
id is compared, and how a value is made safe for a CSV cell.

One definition, used by the collection server's validator (which answers 400 naming the field), by
ingestion (which quarantines the row or answer) and by every CSV writer (server export and stage-5
outputs), so a value one of them accepts can never break another: a lone UTF-16 surrogate once got
stored by the server and then made every CSV export fail and ingestion crash.
"""

from __future__ import annotations

import re
import unicodedata

# Spreadsheet formula triggers (OWASP "CSV injection"): a cell starting with one of these is prefixed
# with ' on writing; ' itself is included so that the prefix can always be undone (`unneutralise`).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
# Control characters (C0, DEL, C1) are refused but tab and line breaks (a multi-line Google Forms
# answer has them).
# Explicit bidirectional overrides and isolates reorder how the rest of a cell is displayed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Characters that render as nothing although Unicode classes them as letters or symbols.
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f\u17b4\u17b5")
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})


REFUSED = re.compile("[\ud800-\udfff]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|[" + "".join(sorted(BIDI_CONTROLS)) + "]")


def text_problem(text: str) -> str | None:
    """Why `text` may not be stored, or None: lone surrogates (not encodable as UTF-8), NUL and other
    control characters, bidirectional overrides. Checked for every string a participant sends."""
    found = REFUSED.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone UTF-16 surrogate (U+{code:04X}), not valid Unicode text"
    if found.group() in BIDI_CONTROLS:
        return f"the bidirectional control U+{code:04X}"
    return f"the control character U+{code:04X}"


def is_invisible(text: str) -> bool:
    """True when nothing of `text` would show: only whitespace, zero-width and format characters,
    combining marks without a base, or blank-looking fillers (U+3164, U+2800, ...)."""
    return not any(
        not ch.isspace() and ch not in BLANK_LOOKING and unicodedata.category(ch) not in INVISIBLE_CATEGORIES
        for ch in text
    )


def normalise_participant_id(raw: str) -> str:
    """The form participant ids are compared in: NFKC (full-width and compatibility forms folded),
    trimmed, case-folded; people retype their own id inconsistently."""
    folded = unicodedata.normalize("NFKC", raw).strip().casefold()
    return unicodedata.normalize("NFKC", folded)


# Line end of every CSV the pipeline writes. RFC 4180's CRLF, and not "\n": Python's csv writer
# quotes a cell holding a character of the line terminator, so with "\n" alone a bare CR inside a
# cell was written unquoted and split the row for every reader.
CSV_LINE_END = "\r\n"


def neutralise(value: object) -> object:
    """Defuse spreadsheet formulas: a string starting with = + - @ tab, CR or ' gets a leading '."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def unneutralise(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def csv_cell(value: object) -> object:
    """A value safe to write to a CSV cell whatever was stored: a character `text_problem` refuses
    (lone surrogate, NUL, other controls) is shown as U+FFFD, formulas are neutralised;
    None is an empty cell; other non-strings (numbers, bools) are written as they are."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    if text_problem(value):
        value = "".join("\ufffd" if text_problem(ch) else ch for ch in value)
    return neutralise(value)
